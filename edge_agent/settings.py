"""Typed agent settings: a TOML or JSON file, overridden by LUCIOLE_AGENT_* environment variables.

Example `agent.toml` (every key can also be set as LUCIOLE_AGENT_<KEY>, nested keys with `__`,
e.g. LUCIOLE_AGENT_BROKER__PASSWORD):

    controller_id = "ctl-0001"
    tenant = "ixelles"
    data_dir = "/var/lib/luciole-agent"
    firmware = "luciole-agent 0.1"

    [position]
    lat = 50.8466
    lon = 4.3528

    [broker]
    host = "mqtt.example.org"
    port = 8883
    username = "ctl-0001"
    password = "..."              # or LUCIOLE_AGENT_BROKER__PASSWORD
    [broker.tls]
    ca = "/etc/luciole/ca.pem"    # TLS is on when `tls` is present
    cert = "/etc/luciole/ctl.pem" # optional client certificate
    key = "/etc/luciole/ctl.key"

    [[dali]]                      # one or more DALI buses; bus i drives luminaires i*64..i*64+63
    kind = "daliserver"           # or "hid" (path, driver = "tridonic"|"hasseb") or "serial" (uri)
    host = "127.0.0.1"
    port = 55825

    [[modbus]]                    # zero or more Modbus meters
    profile = "eastron_sdm630"
    host = "10.0.0.20"            # Modbus TCP; or serial_port = "/dev/ttyUSB0" for RTU
    port = 502
    device_id = 1

    [[sensors]]                   # zero or more pole sensors (PIR presence counter, ambient light)
    kind = "modbus"
    profile = "/etc/luciole/pole_sensor.json"  # a register-map file; default: the shipped
    host = "10.0.0.21"                         # a shipped profile id or a profile file path
    port = 502
    luminaires = [0, 1]           # which luminaires it watches; omit for all of them
    poll_interval_s = 1.0         # omit to use config.sensor_poll_interval_s

    [config]                      # a ControllerConfig (wire.messages); the retained `config`
    telemetry_interval_s = 60     # topic replaces it at run time

    [schedule]                    # optional wire.messages.Schedule; FALLBACK when absent
    timezone = "Europe/Brussels"
    steps = [{anchor = "sunset", offset_min = 0, level = 254},
             {anchor = "clock", at = "23:00:00", level = 170},
             {anchor = "sunrise", offset_min = 0, level = 0}]
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from wire.messages import ControllerConfig, ControllerId, Schedule


class SettingsError(ValueError):
    """Agent settings that cannot be used; the text says which field and why."""


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ca: Path | None = Field(None, description="CA bundle; None uses the system's trust store")
    cert: Path | None = Field(None, description="client certificate (mutual TLS), optional")
    key: Path | None = Field(None, description="client key, with cert")
    insecure: bool = Field(False, description="skip host name verification (tests only)")


class BrokerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None


class PositionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(50.8466, ge=-90, le=90)
    lon: float = Field(4.3528, ge=-180, le=180)


class DaliBusSpec(BaseModel):
    """How to reach one DALI bus."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["daliserver", "hid", "serial"] = "daliserver"
    host: str = "127.0.0.1"
    port: int = Field(55825, ge=1, le=65535)
    path: str | None = None  # hid device path
    driver: Literal["tridonic", "hasseb"] = "tridonic"
    uri: str | None = None  # serial, e.g. "luba232:/dev/ttyUSB0"
    timeout_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> DaliBusSpec:
        if self.kind == "hid" and not self.path:
            raise ValueError("a hid DALI bus needs `path`")
        if self.kind == "serial" and not self.uri:
            raise ValueError("a serial DALI bus needs `uri`")
        return self


class ModbusSpec(BaseModel):
    """One Modbus device: a profile of hardware/modbus/profiles and its transport."""

    model_config = ConfigDict(extra="forbid")
    profile: str = "eastron_sdm630"
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    device_id: int | None = None
    timeout_s: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _one_transport(self) -> ModbusSpec:
        if (self.host is None) == (self.serial_port is None):
            raise ValueError("a Modbus device needs exactly one of `host` (TCP) or `serial_port` (RTU)")
        return self


_REGISTER_NAME = r"^[a-z][a-z0-9_]*$"  # as in hardware.modbus profiles


class SensorSpec(BaseModel):
    """One pole sensor read over Modbus through a register-map profile (an id or a file path)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["modbus"] = "modbus"
    profile: str = Field("luciole_pole_sensor",
                         description="profile id of hardware/modbus/profiles or path of a .json file")
    presence_register: str | None = Field("presence_count", pattern=_REGISTER_NAME,
                                          description="cumulative detection counter; None: no PIR")
    lux_register: str | None = Field("ambient_lux", pattern=_REGISTER_NAME,
                                     description="illuminance (lx); None: no light sensor")
    host: str | None = None
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    device_id: int | None = None
    timeout_s: float = Field(1.0, gt=0)
    luminaires: list[int] | None = Field(None, description="luminaire indexes it covers; None: all")
    poll_interval_s: float | None = Field(None, gt=0,
                                          description="None: config.sensor_poll_interval_s")

    @model_validator(mode="after")
    def _complete(self) -> SensorSpec:
        if (self.host is None) == (self.serial_port is None):
            raise ValueError("a Modbus sensor needs exactly one of `host` (TCP) or `serial_port` (RTU)")
        if self.presence_register is None and self.lux_register is None:
            raise ValueError("a sensor needs presence_register, lux_register or both")
        return self


class AgentSettings(BaseSettings):
    """Everything one edge agent needs; validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_AGENT_", env_nested_delimiter="__",
                                      extra="forbid")

    controller_id: ControllerId
    tenant: ControllerId
    data_dir: Path = Field(Path("var/agent"), description="outbox and agent state (SQLite)")
    firmware: str = "luciole-agent 0.1"
    position: PositionSettings = Field(default_factory=PositionSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    dali: list[DaliBusSpec] = Field(default_factory=list)
    modbus: list[ModbusSpec] = Field(default_factory=list)
    sensors: list[SensorSpec] = Field(default_factory=list)
    config: ControllerConfig = Field(default_factory=ControllerConfig)
    schedule: Schedule | None = None
    drain_rate_per_s: float = Field(200.0, gt=0, description="backlog drain rate after reconnect")
    drain_burst: int = Field(50, ge=1)
    inflight: int = Field(8, ge=1, le=10, description="QoS 1 messages awaiting PUBACK at once")
    confirm_timeout_s: float = Field(
        60.0, gt=0, description="real seconds a PUBACKed message waits for ingest's receipt before "
        "it is sent again (the first time; then doubling up to confirm_timeout_max_s, jittered)")
    confirm_timeout_max_s: float = Field(900.0, gt=0)
    confirm_window: int = Field(
        1000, ge=1, le=100_000, description="messages sent and not yet confirmed, at most")
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    control_tick_s: float = Field(1.0, gt=0, description="how often target levels are recomputed")
    discovery_wait_s: float = Field(
        10.0, ge=0, description="real seconds the first broker connection waits for DALI "
        "discovery, so the birth message and the last will count the gear found")
    dali_rediscover_s: float = Field(
        900.0, gt=0, description="how often (agent time) each DALI bus is searched for new gear")
    clock_factor: float = Field(1.0, gt=0, description="agent time speed-up (demo, tests only)")
    clock_start: float | None = Field(None, description="agent start time, epoch s (tests only)")

    @model_validator(mode="after")
    def _confirm_timeouts(self) -> AgentSettings:
        if self.confirm_timeout_max_s < self.confirm_timeout_s:
            raise ValueError("confirm_timeout_max_s must be at least confirm_timeout_s")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        # the environment overrides the file (given as init values)
        return env_settings, init_settings, file_secret_settings


def read_file(path: Path) -> dict[str, Any]:
    """The raw contents of a TOML (.toml) or JSON file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read agent config {path}: {exc}") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text.decode())
        return json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None


def _readable(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )


def load_settings(path: Path | None = None, **overrides: Any) -> AgentSettings:
    """Settings from `path` (TOML or JSON) and the environment; raises SettingsError."""
    data = read_file(path) if path is not None else {}
    data.update(overrides)
    try:
        return AgentSettings(**data)
    except ValidationError as exc:
        raise SettingsError(f"invalid agent settings: {_readable(exc)}") from None


def write_settings(settings: AgentSettings, path: Path) -> None:
    """Write settings as JSON (mode 0600: it holds the broker password)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(settings.model_dump_json(indent=2, exclude_none=True))
    tmp.chmod(0o600)
    tmp.replace(path)
