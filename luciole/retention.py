"""Retention: old chunks of the hypertables dropped, the ledger and dead letters trimmed.

The work is one SECURITY DEFINER function in the database (luciole_retention, migration 0007)
that only the jobs role may execute; this module passes it the periods of the settings and
returns what it removed. `luciole db retention` runs it once; the job runner runs it on schedule.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY = 86_400

CALL = "SELECT target, removed FROM luciole_retention(%s, %s, %s, %s, %s, %s, %s)"


class RetentionSettings(BaseSettings):
    """How long each table keeps its rows (environment prefix LUCIOLE_RETENTION_)."""

    model_config = SettingsConfigDict(env_prefix="LUCIOLE_RETENTION_", extra="ignore")

    telemetry_days: int = Field(
        400, ge=395, description="raw luminaire telemetry: baselines and settlement corrections "
        "look back a year, so at least 13 months")
    sensor_days: int = Field(400, ge=395, description="raw sensor readings")
    events_days: int = Field(730, ge=395, description="controller events")
    energy_days: int = Field(1100, ge=395, description="15-minute energy rollups (settlement)")
    ledger_days: int = Field(
        30, ge=14, description="message ledger: must outlive every copy of a message that can "
        "still arrive (duplicate_window_days)")
    duplicate_window_days: int = Field(
        14, ge=1, description="longest a duplicate can still arrive after the first copy: the "
        "agent's outbox age (7 days) plus ingest's broker session expiry (7 days)")
    rejects_days: int = Field(30, ge=1, description="dead letters, by age")
    rejects_max_mib: int = Field(256, ge=1, description="dead letters, by total payload size")

    @model_validator(mode="after")
    def _ledger_outlives_duplicates(self) -> RetentionSettings:
        if self.ledger_days <= self.duplicate_window_days:
            raise ValueError(
                f"ledger_days ({self.ledger_days}) must exceed duplicate_window_days "
                f"({self.duplicate_window_days}), or a late duplicate would be stored twice")
        return self

    def arguments(self) -> tuple[object, ...]:
        def days(n: int) -> timedelta:
            return timedelta(seconds=n * DAY)

        return (days(self.telemetry_days), days(self.sensor_days), days(self.events_days),
                days(self.energy_days), days(self.ledger_days), days(self.rejects_days),
                self.rejects_max_mib << 20)


def run_retention(dsn: str, settings: RetentionSettings) -> dict[str, int]:
    """Run retention once as the role of `dsn` (the jobs role); {target: rows or chunks removed}."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(CALL, settings.arguments()).fetchall()
    return {str(target): int(removed) for target, removed in rows}
