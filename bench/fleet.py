"""Benchmark of fleet mode: 100,000 controllers x 4 luminaires at 1-minute telemetry, published
at QoS 1 to a real Mosquitto started for the run; how many times faster than real time.

Ceilings printed beside it: the simulation alone (no publishing) and raw paho publishing of
prebuilt payloads by the same publisher processes. A subscriber on one municipality's
telemetry decodes what reaches the broker and checks every controller's sequence is gap-free.
The last line reads `fleet: X x real time, peak M MiB` (peak RSS of the fleet process plus
its publisher processes).
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_inventory import build_inventory
from controller_fw_sim.fleet_publish import MqttTarget, PublisherPool, make_client
from controller_fw_sim.fleet_runner import Progress, publish_births, run_fleet
from luciole.settings import StackSettings
from tests.conftest import ObservedStack as Stack  # an account that may publish any telemetry
from wire.codec import decode_batch
from wire.records import RecordType
from wire.topics import Kind, subscription


class SampleSubscriber:
    """Subscribes to one tenant's telemetry and keeps every payload (decoded at the end)."""

    def __init__(self, target: MqttTarget, tenant: str) -> None:
        self.payloads: list[bytes] = []
        self.luminaire_messages = 0
        self.ready = threading.Event()
        self.client = make_client(target, f"bench-sample-{tenant}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(subscription(Kind.TELEMETRY, tenant), 1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(target.host, target.port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("sample subscription not acknowledged")

    def _on_message(self, client, userdata, message) -> None:
        self.payloads.append(message.payload)
        self.luminaire_messages += message.payload[3] == RecordType.LUMINAIRE

    def count(self) -> int:
        """Luminaire messages received."""
        return self.luminaire_messages

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def check_sample(payloads: list[bytes], m: int) -> tuple[int, int, int, int]:
    """(luminaire messages, sensor messages, controllers, gaps): per boot, luminaire sequences
    advance by M per message and sensor sequences by each message's record count."""
    batch = decode_batch(payloads, int(time.time() * 1e6) + 10 * 365 * 86_400_000_000)
    assert len(batch.rejects) == 0, f"{len(batch.rejects)} rejected records"
    gaps = 0
    lum = batch.msg_type == RecordType.LUMINAIRE
    for is_lum in (lum, ~lum):
        keys = batch.msg_boot[is_lum]
        first = batch.msg_first_seq[is_lum].astype(np.int64)
        count = batch.msg_count[is_lum].astype(np.int64)
        for boot in np.unique(keys):
            mine = keys == boot
            order = np.argsort(first[mine], kind="stable")
            f, k = first[mine][order], count[mine][order]
            gaps += int(f[0] != 0) + int(np.count_nonzero(f[1:] != f[:-1] + k[:-1]))
    return (int(lum.sum()), int((~lum).sum()), int(np.unique(batch.msg_boot).shape[0]), gaps)


def sim_ceiling(controllers: int, m: int, sim_s: float) -> float:
    fleet = Fleet(build_inventory(controllers, m, seed=1))
    t0 = time.perf_counter()
    for i in range(1, int(sim_s) + 1):
        fleet.advance(float(i))
    return sim_s / (time.perf_counter() - t0)


def paho_ceiling(target: MqttTarget, tenants, controllers, payload_size: int, count: int,
                 workers: int) -> float:
    """Messages per second the publisher processes sustain on prebuilt payloads."""
    rows = np.zeros((count, payload_size), dtype=np.uint8)
    ctl = np.arange(count) % len(controllers)
    with PublisherPool(target, tenants, controllers, workers=workers, client_prefix="bench-raw") as pool:
        t0 = time.perf_counter()
        for part in range(0, count, 5000):
            pool.wait_backlog(20_000, 120)
            pool.submit(Kind.TELEMETRY, ctl[part:part + 5000], rows[part:part + 5000])
        pool.wait_backlog(0, 300)
        return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controllers", type=int, default=100_000)
    parser.add_argument("--luminaires", type=int, default=4)
    parser.add_argument("--interval-s", type=float, default=60.0)
    parser.add_argument("--sim-minutes", type=float, default=15.0)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--sample-tenant", default="koekelberg")
    args = parser.parse_args()
    n, m = args.controllers, args.luminaires
    sim_s = args.sim_minutes * 60.0
    needed = n / args.interval_s
    print(f"fleet bench: {n:,} controllers x {m} luminaires, telemetry every {args.interval_s:.0f} s "
          f"({needed:,.0f} msg/s of sim time), {args.sim_minutes:g} sim minutes, "
          f"{args.publishers} publisher processes, QoS 1, MQTT 5")

    with tempfile.TemporaryDirectory(prefix="luciole-bench-fleet-") as tmp:
        stack = Stack(StackSettings(var_dir=Path(tmp) / "var", mqtt_port=0, pg_port=0, pg_fsync=False,
                                    pg_shared_buffers="64MB"))
        endpoints = stack.up()
        try:
            target = MqttTarget(endpoints.mqtt_host, endpoints.mqtt_port, endpoints.mqtt_username,
                                endpoints.mqtt_password)
            inventory = build_inventory(n, m, seed=1)
            tenants, ids = inventory.controller_tenant_ids(), list(inventory.controller_ids)
            sample = SampleSubscriber(target, args.sample_tenant)

            pool = PublisherPool(target, tenants, ids, workers=args.publishers).start()
            fleet = Fleet(inventory, interval_s=args.interval_s, seed=1)
            sensors = len(fleet.meters) + int(fleet.urban.controllers.shape[0])
            needed = (n + sensors) / args.interval_s
            print(f"sensor messages: {len(fleet.meters):,} cabinet meters + "
                  f"{fleet.urban.controllers.shape[0]:,} multifunction poles per interval "
                  f"({needed:,.0f} msg/s of sim time in all)")
            t0 = time.perf_counter()
            births = publish_births(fleet, pool)
            print(f"births: {births:,} retained State messages in {time.perf_counter() - t0:.1f} s")

            def show(p: Progress) -> None:
                print(f"  sim {p.sim_s:5.0f} s  wall {p.wall_s:5.1f} s  {p.speed:5.1f}x  "
                      f"telemetry {p.messages:,}  acked {p.acked - births:,}", flush=True)

            final = run_fleet(fleet, pool, None, speed=math.inf, duration_s=sim_s, on_progress=show)
            pool.close()
            speed = final.speed
            peak_mib = (
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + pool.workers_peak_rss_kib()
            ) / 1024
            telemetry_rate = (final.messages + final.sensor_messages) / final.wall_s
            print(f"fleet run: {final.sim_s:.0f} sim s in {final.wall_s:.1f} wall s, "
                  f"{final.messages:,} luminaire + {final.sensor_messages:,} sensor telemetry messages "
                  f"acknowledged ({telemetry_rate:,.0f} msg/s), {pool.failed} refused by the broker")
            expected_sample = int(np.count_nonzero(np.asarray(tenants) == args.sample_tenant))
            deadline = time.monotonic() + 30
            want = expected_sample and round(final.messages * expected_sample / n)
            while sample.count() < want and time.monotonic() < deadline:
                time.sleep(0.05)
            sample.stop()
            msgs, sensor_msgs, ctls, gaps = check_sample(sample.payloads, m)
            print(f"subscriber on {args.sample_tenant}: {msgs:,} luminaire + {sensor_msgs:,} sensor messages "
                  f"from {ctls:,} controllers (expected {want:,} luminaire from {expected_sample:,}), "
                  f"decoded, {gaps} sequence gaps")
            del fleet, pool
            gc.collect()

            sim_x = sim_ceiling(n, m, min(sim_s, 300.0))
            print(f"ceiling, simulation alone (no publishing): {sim_x:,.0f} x real time")
            raw = paho_ceiling(target, tenants, ids, 24 + 48 * m, 300_000, args.publishers)
            print(f"ceiling, raw paho QoS 1 publishing of prebuilt payloads: {raw:,.0f} msg/s "
                  f"= {raw / needed:,.1f} x real time")
        finally:
            stack.down()
    print(f"fleet: {speed:.1f} x real time, peak {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
