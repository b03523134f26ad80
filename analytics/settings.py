"""Typed settings of the job runner (environment prefix LUCIOLE_JOBS_)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire.sim_clock import SimClock


class JobsSettings(BaseSettings):
    """One `luciole jobs` process. The DSN is handed in by the command line (from
    LUCIOLE_JOBS_DSN, else from the local stack)."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_JOBS_", extra="ignore")

    dsn: SecretStr = Field(description="PostgreSQL DSN of the jobs' database role")
    faults_every_s: float = Field(60.0, gt=0, description="period of the fault-detection pass")
    settle_s: float = Field(
        60.0, ge=0, description="a pass reads records up to this long before the newest stored")
    max_window_s: float = Field(3600.0, gt=0, description="a pass reads at most this much time")
    energy_every_s: float = Field(300.0, gt=0, description="period of the energy-accounting pass")
    energy_max_window_s: float = Field(
        6 * 3600.0, gt=0, description="an energy pass reads at most this much time")
    settlement_every_s: float = Field(
        900.0, gt=0, description="period of the settlement export (each supply point's day once "
        "it has ended, again after its energy changed)")
    silence_s: float = Field(
        900.0, gt=0, description="a controller silent this long while powered is a fault")
    optimiser_every_s: float = Field(
        3600.0, gt=0, description="period of the optimiser's pass (it proposes once a local day)")
    sim_clock: SimClock | None = Field(
        None, description="a simulated fleet's clock (JSON: origin, wall_s, speed), handed by the "
        "demo: the optimiser plans the nights of that clock; absent (production): the database's")
    optimiser_nights: int = Field(7, ge=1, le=31, description="nights each proposal covers")
    metrics_host: str = Field("127.0.0.1", description="/metrics listens here (loopback)")
    metrics_port: int = Field(9465, ge=0, le=65535, description="0: no /metrics server")
    progress_every_s: float = Field(30.0, gt=0, description="period of the progress log line")
    retry_initial_s: float = Field(0.5, gt=0, description="first backoff after a database error")
    retry_max_s: float = Field(30.0, gt=0, description="backoff cap")
