"""Readings that lack power and energy (a plain DALI gear, or a missed D4i read) go through the
real ingest writer and fold as absent: stored with their ABSENT_POWER bit, never counted as zero
energy, and never taken for a counter reset that would book a lifetime of energy at once."""

from __future__ import annotations

import psycopg
import pytest

from edge_agent.telemetry import LuminaireReading, SeqCounter, luminaire_records, payloads
from ingest.writer import Writer
from tests.ingest.ingest_helpers import T0_US, register_fleet
from wire.records import LuminaireFailure

pytestmark = pytest.mark.integration
MINUTE_US = 60_000_000
PLAIN, D4I = 0, 1
D4I_ENERGY = [1000.0, None, 1020.0, 1030.0]  # the second read of bank 202 got no answer


def test_absent_energy_is_stored_absent_and_not_counted(db_dsn: str) -> None:
    fleet = register_fleet(db_dsn, 1)
    (controller,) = fleet.keys
    readings = []
    for k, wh in enumerate(D4I_ENERGY):
        t = T0_US + k * MINUTE_US
        readings.append(LuminaireReading(t, PLAIN, level=200, status=4))
        readings.append(LuminaireReading(t, D4I, level=200, status=4, energy_wh=wh,
                                         power_w=None if wh is None else 40.0))
    batch = [(fleet.topic(controller), payload) for _, payload in
             payloads(luminaire_records(readings), 3, SeqCounter(), 2)]
    writer = Writer(db_dsn)
    try:
        assert writer.write(batch).luminaire_records == 8
        writer.refresh_rollups()
    finally:
        writer.close()
    with psycopg.connect(db_dsn) as conn:
        stored = conn.execute(
            "SELECT luminaire, level, power_w, energy_wh, failure FROM luminaire_telemetry"
            " ORDER BY time, luminaire").fetchall()
        energy: dict[int, float] = dict(conn.execute(
            "SELECT luminaire, sum(energy_wh) FROM energy_15min GROUP BY luminaire").fetchall())
        (supply,) = conn.execute("SELECT sum(energy_wh) FROM energy_15min_supply").fetchone() or (
            None,)
        state = conn.execute("SELECT luminaire, level, failure FROM luminaire_state"
                             " ORDER BY luminaire").fetchall()
    plain = [row for row in stored if row[0] == PLAIN]
    assert len(plain) == 4 and all(row[1] == 200 for row in plain), "level and status stored"
    assert all(row[4] & LuminaireFailure.ABSENT_POWER and not row[4] & LuminaireFailure.COMM
               for row in plain), "power and energy marked absent, no communication fault"
    assert PLAIN not in energy, "a gear that does not meter counts no energy, not zero"
    assert energy[D4I] == pytest.approx(30.0), "1000 -> 1020 -> 1030 Wh; the missed read skipped"
    assert supply == pytest.approx(30.0)
    assert [row[:2] for row in state] == [(PLAIN, 200), (D4I, 200)]
