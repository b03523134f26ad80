"""Typed settings of the API (environment prefix LUCIOLE_API_), filled by `luciole api`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.sim_clock import SimClock


class MqttAccount(BaseModel):
    """One broker account of the API (the broker binds each account to one client id)."""

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr


class ApiSettings(BaseSettings):
    """The API's database role, broker accounts, token signing and limits."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_API_", extra="ignore")

    dsn: SecretStr | None = Field(None, description="PostgreSQL DSN of the luciole_api role")
    pool_min: int = Field(2, ge=1, description="database connections kept open per worker")
    pool_max: int = Field(10, ge=1, description="most database connections per worker")
    pool_timeout_s: float = Field(5.0, gt=0, description="longest wait for a database connection "
                                  "before answering 503")

    mqtt_host: str | None = Field(None, description="broker host (commands leave through it)")
    mqtt_port: int | None = Field(None, ge=1, le=65535)
    tile_url: str | None = Field(None, description="the dashboard map's raster tiles, e.g. "
                                 "https://tiles.example/{z}/{x}/{y}.png (none: a plain background)")
    mqtt_username: str | None = Field(None, description="the API's broker account")
    mqtt_password: SecretStr | None = None
    mqtt_accounts: list[MqttAccount] = Field(
        default_factory=list,
        description="one broker account per worker (JSON list of {username, password}); each "
        "worker takes a free one (a lock file in run_dir)")
    run_dir: Path | None = Field(None, description="where workers lock their broker account "
                                 "(default: the system's temporary directory)")

    token_secret: SecretStr | None = Field(
        None, description="HMAC key signing bearer tokens (at least 32 characters); every "
        "worker must share it")
    token_lifetime_s: int = Field(900, ge=60, le=86_400, description="bearer token lifetime")
    session_max_s: int = Field(43_200, ge=60, le=604_800,
                               description="how long renewals may extend a login (POST /auth/refresh)")

    login_max_failures: int = Field(5, ge=1, description="consecutive failures before lockout")
    lockout_s: int = Field(900, ge=1, description="how long a locked account stays locked")
    login_rate_per_min: int = Field(20, ge=1, description="login attempts per minute and address")

    device_mqtt_host: str | None = Field(None, description="broker host given to provisioned "
                                         "controllers (default mqtt_host)")
    device_mqtt_port: int | None = Field(None, ge=1, le=65535)
    device_mqtt_tls: bool = Field(False, description="controllers connect with TLS")
    device_ca_file: Path | None = Field(None, description="CA certificate given to controllers")

    host: str = Field("127.0.0.1", description="address uvicorn listens on")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(2, ge=1, le=64, description="uvicorn worker processes")
    max_import_bytes: int = Field(32 << 20, ge=1024, description="largest bulk import body")
    sim_clock: SimClock | None = Field(
        None, description="a simulated fleet's clock (JSON: origin, wall_s, speed), handed by the "
        "demo: commands are issued, expire and are swept as expired on it, the MQTT message expiry "
        "is its time left in wall seconds, and tonight (proposals, previews) is its night. Unset "
        "(the default, and in production): the wall clock")

    @model_validator(mode="after")
    def _check(self) -> ApiSettings:
        if self.token_secret is not None and len(self.token_secret.get_secret_value()) < 32:
            raise ValueError("token_secret must be at least 32 characters")
        return self

    def broker_accounts(self) -> list[MqttAccount]:
        """The accounts workers may take: the list, else the single account."""
        if self.mqtt_accounts:
            return list(self.mqtt_accounts)
        if self.mqtt_username is not None and self.mqtt_password is not None:
            return [MqttAccount(username=self.mqtt_username, password=self.mqtt_password)]
        return []
