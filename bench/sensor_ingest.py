"""What the sensor inventory costs ingest: sensor telemetry written through the real `Writer`
(decode, ledger, COPY, the inventory's merge, commit) against the same writer with the merge left
out, in alternating rounds on one temporary stack, so the machine's load moves both alike.

Each message is one sensor box's backlog: `--readings` readings of its five quantities (the
batch of an agent's outbox, 50 records by default); a batch is `--batch` messages of different
controllers. Every round writes new sequence numbers, so nothing is a duplicate.

    .venv/bin/python bench/sensor_ingest.py [--controllers 2000] [--rounds 6] [--batches 10]

Last line: `sensor ingest: with the inventory N records/s, without M records/s (median of the
rounds); cost C %; load L`."""

from __future__ import annotations

import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import psycopg

from ingest.copy_binary import write as copy_write
from ingest.prepare import Prepared
from ingest.writer import SENSOR_ROWS, Writer
from wire.codec import SENSOR_DTYPE, encode_sensor
from wire.sensor_channels import URBAN_QUANTITIES, URBAN_SENSOR_BASE
from wire.topics import Kind, topic

TENANT = "bench"


class WriterWithoutInventory(Writer):
    """The writer as it was before the sensor inventory: the readings' COPY only."""

    @staticmethod
    def _sensors(cur: psycopg.Cursor, p: Prepared, keep: np.ndarray) -> int:
        return copy_write(cur, SENSOR_ROWS, {
            "time": p.sensor["time_us"][keep], "controller_key": p.sensor_controller[keep],
            "sensor": p.sensor["sensor"][keep], "quantity": p.sensor["quantity"][keep],
            "value": p.sensor["value"][keep], "boot_id": p.sensor_boot[keep],
            "seq": p.sensor_seq[keep],
        })


def register(dsn: str, controllers: int) -> list[str]:
    names = [f"box{i:06d}" for i in range(controllers)]
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (TENANT, "Bench"))
        with conn.cursor().copy("COPY controllers (id, tenant_id) FROM STDIN") as copy:
            for name in names:
                copy.write_row((name, TENANT))
    return names


def batches(names: list[str], start_us: int, readings: int, size: int,
            first_seq: int) -> list[list[tuple[str, bytes]]]:
    """One message per controller: `readings` minutes of its box's five quantities."""
    quantities = [int(q) for q in URBAN_QUANTITIES.values()]
    records = np.zeros(readings * len(quantities), dtype=SENSOR_DTYPE)
    records["time_us"] = start_us + np.repeat(np.arange(readings), len(quantities)) * 60_000_000
    records["sensor"] = URBAN_SENSOR_BASE
    records["quantity"] = np.tile(quantities, readings)
    records["value"] = 20.0 + np.arange(records.shape[0]) % 7
    payload = encode_sensor(1, first_seq, records)
    messages = [(topic(TENANT, name, Kind.TELEMETRY), payload) for name in names]
    return [messages[i:i + size] for i in range(0, len(messages), size)]


def round_rate(writer: Writer, work: list[list[tuple[str, bytes]]], now_us: int) -> float:
    """Records per second over the round's batches."""
    started, records = time.perf_counter(), 0
    for batch in work:
        result = writer.write(batch, now_us=now_us)
        assert not result.rejects and result.duplicates == 0, (result.rejects, result.duplicates)
        records += result.sensor_records
    return records / (time.perf_counter() - started)


def main() -> None:
    from luciole.db_roles import DbService
    from luciole.migrate import migrate
    from luciole.settings import StackSettings
    from luciole.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--controllers", type=int, default=2000)
    parser.add_argument("--readings", type=int, default=10, help="readings per message")
    parser.add_argument("--batch", type=int, default=100, help="messages per batch")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each writer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sensor-ingest-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0, pg_fsync=False))
        endpoints = stack.up()
        try:
            migrate(endpoints.dsn())
            names = register(endpoints.dsn(), args.controllers)
            dsn = endpoints.service_dsn(DbService.INGEST)
            now_us = int(time.time() * 1_000_000)
            start_us = now_us - 6 * 3_600_000_000
            writers = {"with": Writer(dsn, receipts=False),
                       "without": WriterWithoutInventory(dsn, receipts=False)}
            rates: dict[str, list[float]] = {"with": [], "without": []}
            per_round = args.readings * len(URBAN_QUANTITIES)
            for r in range(2 * args.rounds + 2):  # the first two rounds warm up both writers
                which = "with" if r % 2 == 0 else "without"
                work = batches(names, start_us + r * args.readings * 60_000_000, args.readings,
                               args.batch, r * per_round)
                rate = round_rate(writers[which], work, now_us)
                if r >= 2:
                    rates[which].append(rate)
            for writer in writers.values():
                writer.close()
            with psycopg.connect(endpoints.dsn()) as conn:
                series = conn.execute("SELECT count(*) FROM sensor_state").fetchone()
            with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
            print(f"rounds with: {', '.join(f'{x:,.0f}' for x in rates['with'])}")
            print(f"rounds without: {', '.join(f'{x:,.0f}' for x in rates['without'])}")
            print(f"{series[0] if series else 0:,} series in the inventory;"
                  f" {args.batch * per_round:,} records a batch")
            print(f"sensor ingest: with the inventory {with_:,.0f} records/s, without {without:,.0f}"
                  f" records/s (median of {args.rounds} rounds); cost {100 * (1 - with_ / without):.1f} %;"
                  f" load {os.getloadavg()[0]:.1f}")
        finally:
            stack.down()


if __name__ == "__main__":
    main()
