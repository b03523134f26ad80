"""Typed settings of the local stack and of the services that connect to it (prefix LUCIOLE_)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """Where the local stack keeps its data and listens. Ports of 0 mean "pick a free one"."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_", extra="ignore")

    var_dir: Path = Field(Path("var"), description="data of the broker and database")
    bind: str = Field("127.0.0.1", description="address the database listens on (and the broker's "
                      "TLS listener unless mqtt_tls_bind); the plaintext MQTT listener is "
                      "always on 127.0.0.1, for local services")
    mqtt_port: int = Field(1883, ge=0, le=65535, description="preferred MQTT port; busy -> free one")
    pg_port: int = Field(5433, ge=0, le=65535, description="preferred PostgreSQL port; busy -> free")
    mqtt_tls_port: int | None = Field(
        None, ge=0, le=65535, description="also listen with TLS on this port (0: a free one)"
    )
    mqtt_tls_bind: str | None = Field(
        None, description="address of the TLS listener devices connect to (default: bind)"
    )
    pg_bin: Path = Field(Path("/usr/lib/postgresql/15/bin"), description="PostgreSQL 15 binaries")
    mosquitto_bin: Path = Field(Path("/usr/sbin/mosquitto"), description="Mosquitto 2 binary")
    pg_fsync: bool = Field(True, description="off only for throwaway test databases")
    pg_shared_buffers: str = Field("512MB")
    mqtt_max_queued_messages: int = Field(
        10_000_000, gt=0, description="per-client QoS 1 queue; finite and large (0 misbehaves)"
    )
    mqtt_max_inflight_messages: int = Field(1000, ge=0)
    start_timeout_s: float = Field(60.0, gt=0)

    @field_validator("bind", "mqtt_tls_bind")
    @classmethod
    def _bind_is_an_address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # raises ValueError with a clear message
        return value
