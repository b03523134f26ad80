"""Typed settings of an ingest worker (environment prefix LUCIOLE_INGEST_)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.sim_clock import SimClock
from wire.topics import INGEST_SHARE_GROUP, validate_identifier


class IngestSettings(BaseSettings):
    """One ingest worker. Its broker account and database role come from these fields, which
    `luciole ingest` fills from the local stack when they are not set in the environment."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_INGEST_", extra="ignore")

    mqtt_host: str | None = Field(None, description="broker host")
    mqtt_port: int | None = Field(None, ge=1, le=65535)
    mqtt_username: str | None = Field(None, description="this worker's own broker account")
    mqtt_password: SecretStr | None = None
    dsn: SecretStr | None = Field(None, description="PostgreSQL DSN of the ingest role")

    client_id: str = Field(
        "ingest-1", description="stable per worker: it names the MQTT session; the broker binds "
        "it to the worker's account (ingest-N)")
    share_group: str = Field(INGEST_SHARE_GROUP, description="MQTT 5 shared subscription group")
    session_expiry_s: int = Field(7 * 86_400, ge=60, description="broker keeps the session this long")
    receive_maximum: int = Field(
        5000, ge=10, le=65_535,
        description="unacknowledged QoS 1 messages the broker may send: bounds worker memory",
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    idle_reconnect_s: float = Field(
        10.0, ge=0,
        description="reconnect after this long with nothing received and nothing unacknowledged "
        "(0: never); recovers from Mosquitto 2.0.11's flow-control accounting stalls",
    )

    batch_max_messages: int = Field(
        2000, ge=1, description="close a batch at this many messages (keep < receive_maximum)"
    )
    batch_max_records: int = Field(50_000, ge=1, description="close a batch at this many records")
    batch_max_wait_s: float = Field(
        0.2, gt=0, le=10, description="close a batch this long after its first message"
    )

    retry_initial_s: float = Field(0.1, gt=0, description="first backoff after a database error")
    retry_max_s: float = Field(5.0, gt=0, description="backoff cap")
    registry_refresh_min_s: float = Field(
        2.0, ge=0, description="least time between registry reloads on a miss"
    )
    rollup_interval_s: float = Field(
        1.0, ge=0, description="least time between fold passes (state, rollups); the fold runs in "
        "its own thread and database connection, beside the commits")
    receipts: bool = Field(
        True, description="publish each controller's receipt after each commit (end-to-end "
        "confirmation: agents keep readings until named in one); false only where no controller "
        "waits for them, e.g. to measure what they cost (bench/ingest.py)")

    metrics_host: str = Field("127.0.0.1", description="/metrics listens here (loopback)")
    metrics_port: int = Field(9464, ge=0, le=65535, description="0: no /metrics server")
    progress_every_s: float = Field(10.0, gt=0, description="period of the progress log line")
    sim_clock: SimClock | None = Field(
        None, description="a simulated fleet's clock (JSON: origin, wall_s, speed): record times "
        "are accepted up to 1 day past it as well as past the wall clock. Unset (the default, and "
        "in production): the wall clock alone")

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        validate_identifier(self.share_group, "share group")
        if not self.client_id or "/" in self.client_id or "+" in self.client_id or "#" in self.client_id:
            raise ValueError(f"client_id {self.client_id!r} is not a usable MQTT client id")
        if self.batch_max_messages >= self.receive_maximum:
            raise ValueError(
                f"batch_max_messages ({self.batch_max_messages}) must be below receive_maximum "
                f"({self.receive_maximum}), or the broker stops sending before a batch fills"
            )
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be at least retry_initial_s")
        return self
