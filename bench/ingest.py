"""Ingest benchmark against the real broker and database, in one temporary stack:
(a) the raw binary COPY ceiling into luminaire_telemetry, (b) the broker ceiling (publishers to a
bare QoS 1 subscriber, no database), (c) end-to-end ingest with several publishers and workers,
receipts on (as in production), and how far the fold (live state, 15-minute rollups) trails the
newest stored record while it runs (p50, p99, max); (d) the same without receipts (what
end-to-end confirmation costs); for a cabinet poll (50 records a message) and a small message
(4 records). Last line: `ingest: N records/s end-to-end; ratio R; fold lag p50 X s p99 Y s` for
the cabinet-poll shape, R = c / min(a, b).

Lag: every 0.5 s one snapshot reads the records stored (ledger) and those not folded yet
(ingest_segments); the fold's lag at that moment is how long ago the stored count reached today's
folded count (interpolated between snapshots), i.e. wall-clock time from commit to live state."""

from __future__ import annotations

import sys
from pathlib import Path

# this script is bench/ingest.py: keep its folder off sys.path so `ingest` is the package
_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))  # the repository: tests.conftest's observed stack

import argparse
import multiprocessing as mp
import os
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.copy_binary import write as copy_write
from ingest.writer import LUMINAIRE_ROWS
from luciole.migrate import migrate
from luciole.settings import StackSettings
from luciole.stack import Endpoints
from tests.conftest import ObservedStack as Stack  # an account that may publish any telemetry
from wire.codec import LUMINAIRE_DTYPE, encode_luminaire
from wire.topics import Kind, subscription, topic

REPO = Path(__file__).resolve().parents[1]


def _load_blast():
    """bench/mqtt_blast.py, imported by path (this folder is not on sys.path, see above)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mqtt_blast", _here / "mqtt_blast.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mqtt_blast"] = module
    spec.loader.exec_module(module)
    return module.blast


blast = _load_blast()
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
POLL_US = 60_000_000  # record time advances one minute per poll


@dataclass(frozen=True)
class Shape:
    per_message: int
    controllers: int
    polls: int

    @property
    def messages(self) -> int:
        return self.controllers * self.polls

    @property
    def records(self) -> int:
        return self.messages * self.per_message


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------------ fleet, payloads


def register(dsn: str, tenant: str, controllers: int) -> list[str]:
    names = [f"{tenant}-c{i:05d}" for i in range(controllers)]
    ean = f"{abs(hash(tenant)) % 10**18:018d}"
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, tenant))
        conn.execute(
            "INSERT INTO supply_points (ean, tenant_id, name) VALUES (%s, %s, 'bench')", (ean, tenant)
        )
        conn.execute("INSERT INTO cabinets (id, tenant_id, supply_point_ean) VALUES (%s, %s, %s)",
                     (f"{tenant}-cab", tenant, ean))
        with conn.cursor().copy("COPY controllers (id, tenant_id, cabinet_id, status) FROM STDIN") as cp:
            for name in names:
                cp.write_row((name, tenant, f"{tenant}-cab", "active"))
    return names


def records_of_poll(n: int, k: int) -> np.ndarray:
    r = np.zeros(n, dtype=LUMINAIRE_DTYPE)
    r["time_us"] = T0_US + k * POLL_US
    r["luminaire"] = np.arange(n)
    r["level"] = 180
    r["power_w"] = 38.5
    r["energy_wh"] = 1000.0 + 0.64 * k + np.arange(n)
    r["voltage_v"] = 231.0
    r["current_a"] = 0.17
    r["power_factor"] = 0.96
    r["driver_temp_c"] = 41.0
    r["ambient_lux"] = 2.0
    return r


def payloads(tenant: str, names: list[str], shape: Shape, part: int, parts: int) -> list[tuple[str, bytes]]:
    """This publisher's controllers (every parts-th), poll by poll, pre-encoded."""
    mine = names[part::parts]
    out = []
    for k in range(shape.polls):
        records = records_of_poll(shape.per_message, k)
        for name in mine:
            out.append((topic(tenant, name, Kind.TELEMETRY),
                        encode_luminaire(1, k * shape.per_message, records)))
    return out


# ------------------------------------------------------------------------------ processes


def _client(ep: Endpoints, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(ep.mqtt_username, ep.mqtt_password)
    return c


def publisher(ep: Endpoints, tenant: str, names: list[str], shape: Shape, part: int, parts: int,
              ready, go, results) -> None:
    """Publish pre-encoded messages at QoS 1 as fast as the broker acknowledges them (the raw
    MQTT 5 load generator of bench/mqtt_blast.py: paho would measure itself, not ingest)."""
    messages = payloads(tenant, names, shape, part, parts)
    ready.put(len(messages))
    go.wait()
    acked, _started, finished = blast(ep.mqtt_host, ep.mqtt_port, ep.mqtt_username, ep.mqtt_password,
                                      f"bench-pub-{part}-{uuid.uuid4().hex[:6]}", messages)
    results.put(("published", part, acked, finished))


def bare_subscriber(ep: Endpoints, expected: int, ready, results) -> None:
    """Count QoS 1 telemetry messages, acknowledging each (paho's automatic ack)."""
    state = {"n": 0, "first": None, "last": None}

    def on_message(client, userdata, message) -> None:
        state["n"] += 1
        if state["first"] is None:
            state["first"] = time.monotonic()
        state["last"] = time.monotonic()

    c = _client(ep, f"bench-sub-{uuid.uuid4().hex[:6]}")
    c.on_message = on_message
    c.on_subscribe = lambda *a: ready.put("subscribed")
    c.on_connect = lambda client, *a: client.subscribe(subscription(Kind.TELEMETRY), qos=1)
    c.connect(ep.mqtt_host, ep.mqtt_port, clean_start=True)
    c.loop_start()
    deadline = time.monotonic() + 300
    while state["n"] < expected and time.monotonic() < deadline:
        time.sleep(0.005)
    results.put(("received", state["n"], state["first"], state["last"]))
    c.disconnect()
    c.loop_stop()


def start_publishers(ep, tenant, names, shape, parts):
    ctx = mp.get_context("fork")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=publisher, args=(ep, tenant, names, shape, i, parts, ready, go, results))
             for i in range(parts)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    return procs, go, results


def forget_sessions(ep: Endpoints, client_ids: list[str]) -> None:
    """Remove persistent sessions so they queue nothing during the next measurements."""
    for cid in client_ids:
        c = _client(ep, cid)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        c.connect(ep.mqtt_host, ep.mqtt_port, clean_start=True, properties=props)
        c.loop_start()
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()


# ------------------------------------------------------------------------------ measurements


def copy_ceiling(dsn: str, shape: Shape, batch_rows: int, seconds: float) -> float:
    """Rows/s of a loop of binary COPYs (one transaction each) of the same rows into the hypertable."""
    polls = max(1, batch_rows // shape.per_message)
    recs = np.concatenate([records_of_poll(shape.per_message, k) for k in range(polls)])
    n = recs.shape[0]
    cols = {name: recs[name] for name, _ in LUMINAIRE_ROWS.columns if name in recs.dtype.names}
    cols.update(time=recs["time_us"], controller_key=np.full(n, -1, np.int32),
                boot_id=np.zeros(n, np.int64), seq=np.arange(n, dtype=np.int64))
    rows, started = 0, time.perf_counter()
    with psycopg.connect(dsn) as conn:
        while time.perf_counter() - started < seconds:
            with conn.cursor() as cur:
                copy_write(cur, LUMINAIRE_ROWS, cols)  # buffer encoding included, as in ingest
            conn.commit()
            rows += n
        rate = rows / (time.perf_counter() - started)
        conn.execute("TRUNCATE luminaire_telemetry")
    return rate


def broker_ceiling(ep: Endpoints, tenant: str, names: list[str], shape: Shape, parts: int) -> float:
    ctx = mp.get_context("fork")
    sub_ready, sub_results = ctx.Queue(), ctx.Queue()
    sub = ctx.Process(target=bare_subscriber, args=(ep, shape.messages, sub_ready, sub_results))
    sub.start()
    sub_ready.get(timeout=30)
    procs, go, results = start_publishers(ep, tenant, names, shape, parts)
    started = time.monotonic()
    go.set()
    _, received, _first, last = sub_results.get(timeout=320)
    for p in procs:
        p.join(30)
    sub.join(10)
    if received < shape.messages:
        say(f"  broker: only {received} of {shape.messages} messages arrived")
    return received * shape.per_message / (last - started)


def ledger_records(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT coalesce(sum(record_count), 0) FROM message_ledger").fetchone()[0])


@dataclass(frozen=True)
class Run:
    rate: float  # records/s stored, first publish to last record stored
    lag_p50: float  # fold lag while running, s
    lag_p99: float
    lag_max: float
    catch_up: float  # fold done this long after the last record was stored, s


def lag_figures(samples: list[tuple[float, int, int]]) -> tuple[float, float, float]:
    """(p50, p99, max) of the fold's lag, from snapshots (t, stored, folded) in time order."""
    t = np.array([x[0] for x in samples])
    stored = np.array([x[1] for x in samples], dtype=np.float64)
    folded = np.array([x[2] for x in samples], dtype=np.float64)
    busy = stored > 0
    if not busy.any():
        return 0.0, 0.0, 0.0
    # stored is non-decreasing: when did it reach each folded count?
    reached = np.interp(folded[busy], np.maximum.accumulate(stored), t)
    lag = np.maximum(t[busy] - reached, 0.0)
    return float(np.percentile(lag, 50)), float(np.percentile(lag, 99)), float(lag.max())


SNAPSHOT = """SELECT (SELECT coalesce(sum(record_count), 0) FROM message_ledger),
                     (SELECT coalesce(sum(readings), 0) FROM ingest_segments)"""


def end_to_end(ep: Endpoints, tenant: str, names: list[str], shape: Shape, parts: int, workers: int,
               log_dir: Path, receipts: bool = True) -> tuple[Run, list[str]]:
    group = f"b{uuid.uuid4().hex[:8]}"
    ids = [f"bench-ingest-{group}-{i}" for i in range(workers)]
    procs, logs = [], []
    base = ledger_records(ep.dsn())
    for cid in ids:
        env = dict(os.environ)
        env.update({
            "LUCIOLE_INGEST_MQTT_HOST": ep.mqtt_host, "LUCIOLE_INGEST_MQTT_PORT": str(ep.mqtt_port),
            "LUCIOLE_INGEST_MQTT_USERNAME": ep.mqtt_username,
            "LUCIOLE_INGEST_MQTT_PASSWORD": ep.mqtt_password, "LUCIOLE_INGEST_DSN": ep.dsn(),
            "LUCIOLE_INGEST_SHARE_GROUP": group, "LUCIOLE_INGEST_CLIENT_ID": cid,
            "LUCIOLE_INGEST_METRICS_PORT": "0", "LUCIOLE_INGEST_PROGRESS_EVERY_S": "5",
            "LUCIOLE_INGEST_SESSION_EXPIRY_S": "600",
            "LUCIOLE_INGEST_RECEIPTS": "true" if receipts else "false",
        })
        log = log_dir / f"{cid}.log"
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "ingest"], cwd=REPO, env=env,
                                      stdout=open(log, "wb"), stderr=subprocess.STDOUT))
    pubs: list = []
    try:
        deadline = time.monotonic() + 60
        while not all(b"mqtt subscribed" in log.read_bytes() for log in logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("ingest workers did not start: " + logs[0].read_text()[-2000:])
            time.sleep(0.05)
        pubs, go, _results = start_publishers(ep, tenant, names, shape, parts)
        samples: list[tuple[float, int, int]] = []  # (t since start, stored, folded)
        with psycopg.connect(ep.dsn(), autocommit=True) as conn:
            started = time.monotonic()
            go.set()
            stored, last_print = 0, started
            deadline = started + 300
            while time.monotonic() < deadline:
                total, pending = conn.execute(SNAPSHOT).fetchone()
                now = time.monotonic()
                stored = total - base
                samples.append((now - started, stored, stored - pending))
                if stored >= shape.records and pending == 0:
                    break
                if now - last_print >= 2:
                    rate = stored / (now - started)
                    eta = (shape.records - stored) / rate if rate else float("inf")
                    say(f"  e2e: {stored:,}/{shape.records:,} records  {rate:,.0f} records/s  "
                        f"ETA {eta:.0f}s")
                    last_print = now
                # at most 0.5 s between snapshots, more often near the end (the rate's accuracy)
                rate = stored / max(now - started, 1e-3)
                eta = (shape.records - stored) / rate if rate and stored < shape.records else 1.0
                time.sleep(min(0.5, max(0.05, eta / 4)))
        # stored when the last snapshot below the total was taken: within one snapshot period
        done_at = next((t for t, s, _ in samples if s >= shape.records), samples[-1][0])
        elapsed = done_at
        folded_at = samples[-1][0]
        p50, p99, worst = lag_figures(samples)
        say(f"  fold (state, rollups) lag while ingesting: p50 {p50:.1f} s, p99 {p99:.1f} s, "
            f"max {worst:.1f} s; caught up {folded_at - done_at:.1f} s after the last record was stored")
    finally:  # no worker outlives its run, whatever happened
        for p in pubs:
            p.join(30)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    forget_sessions(ep, ids)
    if stored < shape.records:
        raise RuntimeError(f"only {stored} of {shape.records} records stored in time")
    return Run(shape.records / elapsed, p50, p99, worst, folded_at - done_at), ids


def _truncate(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE luminaire_telemetry, message_ledger, luminaire_state, ingest_segments,"
                     " energy_cursor, energy_15min, energy_15min_supply")


def verify(dsn: str, expected: int) -> None:
    with psycopg.connect(dsn) as conn:
        n = conn.execute("SELECT count(*) FROM luminaire_telemetry").fetchone()[0]
        distinct = conn.execute("SELECT count(*) FROM (SELECT DISTINCT controller_key, boot_id, seq,"
                                " luminaire FROM luminaire_telemetry) d").fetchone()[0]
    if n != expected or distinct != expected:
        raise RuntimeError(f"stored {n} rows ({distinct} distinct), expected {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the message counts")
    parser.add_argument("--copy-seconds", type=float, default=4.0)
    parser.add_argument("--receipts-cost", action=argparse.BooleanOptionalAction, default=True,
                        help="also run (d), end to end without receipts, for each shape")
    parser.add_argument("--fsync", action=argparse.BooleanOptionalAction, default=True,
                        help="PostgreSQL fsync (on: the durability ingest acknowledges)")
    args = parser.parse_args()
    shapes = {
        "cabinet poll, 50 records/message": Shape(50, 200, max(1, int(200 * args.scale))),
        "small message, 4 records/message": Shape(4, 2500, max(1, int(100 * args.scale))),
    }
    summary: list[tuple[str, float, float, Run, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0,
                                    pg_fsync=args.fsync, pg_shared_buffers="512MB"))
        ep = stack.up()
        try:
            migrate(ep.dsn())
            say(f"stack up in {tmp}: mosquitto :{ep.mqtt_port}, postgres :{ep.pg_port} "
                f"(fsync {'on' if args.fsync else 'off'}); {os.cpu_count()} cores shared by all, "
                f"load average {os.getloadavg()[0]:.1f}")
            for label, shape in shapes.items():
                tenant = f"bench{shape.per_message}"
                names = register(ep.dsn(), tenant, shape.controllers)
                say(f"{label}: {shape.controllers} controllers x {shape.polls} polls = "
                    f"{shape.messages:,} messages, {shape.records:,} records")
                a = copy_ceiling(ep.dsn(), shape, min(50_000, 400 * shape.per_message), args.copy_seconds)
                say(f"  (a) COPY ceiling: {a:,.0f} rows/s")
                b = broker_ceiling(ep, tenant, names, shape, args.publishers)
                say(f"  (b) broker ceiling: {b:,.0f} records/s ({b / shape.per_message:,.0f} messages/s)")
                c = end_to_end(ep, tenant, names, shape, args.publishers, args.workers, Path(tmp))[0]
                verify(ep.dsn(), shape.records)
                say(f"  (c) end-to-end: {c.rate:,.0f} records/s ({c.rate / shape.per_message:,.0f} "
                    f"messages/s), {args.workers} workers, {args.publishers} publishers, receipts on; "
                    "stored exactly once")
                ratio = c.rate / min(a, b)
                say(f"  ratio c / min(a, b) = {ratio:.2f}")
                d = None
                if args.receipts_cost:
                    _truncate(ep.dsn())
                    d = end_to_end(ep, tenant, names, shape, args.publishers, args.workers,
                                   Path(tmp), receipts=False)[0].rate
                    verify(ep.dsn(), shape.records)
                    say(f"  (d) end-to-end without receipts: {d:,.0f} records/s; receipts cost "
                        f"{1 - c.rate / d:+.0%} of it (ratio d / min(a, b) = {d / min(a, b):.2f})")
                summary.append((label, a, b, c, ratio, d))
                _truncate(ep.dsn())
        finally:
            stack.down()
    say("")
    say(f"{'shape':34} {'(a) COPY rows/s':>15} {'(b) broker rec/s':>16} {'(c) e2e rec/s':>13} "
        f"{'ratio':>5} {'lag p50/p99/max s':>17} {'(d) no receipts':>15}")
    for label, a, b, c, ratio, d in summary:
        lag = f"{c.lag_p50:.1f}/{c.lag_p99:.1f}/{c.lag_max:.1f}"
        nod = f"{d:,.0f}" if d else "-"
        say(f"{label:34} {a:15,.0f} {b:16,.0f} {c.rate:13,.0f} {ratio:5.2f} {lag:>17} {nod:>15}")
    load = os.getloadavg()[0]
    say(f"({os.cpu_count()} cores shared with the broker, the database, the publishers and other users "
        f"of the machine, load average {load:.1f} at the end: figures move between runs, by 30 % "
        "and more on a busy machine; compare only with the ceilings of the same run)")
    label, a, b, c, ratio, d = summary[0]
    say(f"ingest: {c.rate:.0f} records/s end-to-end; ratio {ratio:.2f}; fold lag p50 {c.lag_p50:.1f} s "
        f"p99 {c.lag_p99:.1f} s")


if __name__ == "__main__":
    main()
