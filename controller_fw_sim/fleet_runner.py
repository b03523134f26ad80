"""Fleet run loop: the accelerated clock, ticks, commands in, messages out, progress.

Sim time runs at `speed` times wall time (sim = start + speed * wall elapsed), ticking every
`tick_s` of sim time; with speed ``inf`` ("max") ticks follow each other as fast as the
publishers acknowledge (the backlog of unacknowledged messages is bounded).
"""

from __future__ import annotations

import logging
import math
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from controller_fw_sim.fleet import Fleet
from controller_fw_sim.fleet_publish import CommandLink, PublisherPool
from wire.topics import Kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    sim_s: float  # sim seconds since the fleet's start
    wall_s: float
    messages: int  # luminaire telemetry messages handed to the publishers
    acked: int  # every message the broker acknowledged (telemetry, acks, states)
    commands: int
    duration_s: float | None
    sensor_messages: int = 0  # sensor telemetry messages (meters, urban sensors)

    @property
    def speed(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def rate(self) -> float:
        return self.acked / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.duration_s is None or self.speed <= 0:
            return None
        return max(0.0, (self.duration_s - self.sim_s) / self.speed)


def _publish_json(fleet: Fleet, pool: PublisherPool) -> None:
    for out in fleet.drain_json():
        pool.submit(out.kind, np.asarray([out.controller]), [out.payload], retain=out.retain)


def publish_births(fleet: Fleet, pool: PublisherPool, timeout_s: float = 300.0) -> int:
    """Retained birth (online) State of every controller; waits until all are acknowledged."""
    births = fleet.state_payloads(True)
    pool.submit(Kind.STATE, np.asarray([c for c, _ in births]), [p for _, p in births],
                retain=True)
    pool.wait_backlog(0, timeout_s)
    return len(births)


def publish_deaths(fleet: Fleet, pool: PublisherPool, timeout_s: float = 300.0) -> int:
    """Retained death (offline, shutdown) State of every controller."""
    from wire.messages import OfflineReason

    deaths = fleet.state_payloads(False, OfflineReason.SHUTDOWN)
    pool.submit(Kind.STATE, np.asarray([c for c, _ in deaths]), [p for _, p in deaths],
                retain=True)
    pool.wait_backlog(0, timeout_s)
    return len(deaths)


def run_fleet(fleet: Fleet, pool: PublisherPool, commands: CommandLink | None = None, *,
              speed: float = 1.0, duration_s: float | None = None, tick_s: float = 1.0,
              max_backlog: int | None = None, stop: threading.Event | None = None,
              on_progress: Callable[[Progress], None] | None = None,
              progress_every_s: float = 5.0, stall_timeout_s: float = 120.0,
              wall_origin_s: float | None = None) -> Progress:
    """Run the fleet until `duration_s` of sim time has passed (or `stop` is set).

    `wall_origin_s` (epoch s): the wall time at which the fleet's clock stood at its current
    time, when that was before this call (a clock shared with other processes): the fleet
    catches up to it at full speed, then keeps `speed`."""
    if speed <= 0:
        raise ValueError("speed must be positive (math.inf for as fast as possible)")
    if max_backlog is None:
        # about two ticks' worth of telemetry, at least the publishers' windows
        per_tick = fleet.n * 1.1 * tick_s / float(fleet.interval_s.min())
        max_backlog = max(int(2 * per_tick), pool.window * pool.workers * 2)
    stop = stop or threading.Event()
    t0_sim = fleet.t_s
    messages = sensor_messages = handled = 0
    wall0 = time.monotonic()
    if wall_origin_s is not None and math.isfinite(speed):
        wall0 -= max(0.0, time.time() - wall_origin_s)
    next_report = time.monotonic() + progress_every_s

    def progress() -> Progress:
        return Progress(fleet.t_s - t0_sim, time.monotonic() - wall0, messages, pool.acked, handled,
                        duration_s, sensor_messages)

    while not stop.is_set() and (duration_s is None or fleet.t_s - t0_sim < duration_s - 1e-9):
        next_t = fleet.t_s + tick_s
        if duration_s is not None:
            next_t = min(next_t, t0_sim + duration_s)
        if math.isfinite(speed):
            due_wall = wall0 + (next_t - t0_sim) / speed
            while True:  # wait for the tick's wall time, taking commands as they come
                left = due_wall - time.monotonic()
                if left <= 0 or stop.is_set():
                    break
                if commands is not None:
                    for c, payload in commands.wait(left):
                        fleet.handle_command(c, payload)
                        handled += 1
                    _publish_json(fleet, pool)
                else:
                    stop.wait(left)
        if commands is not None:
            for c, payload in commands.drain():
                fleet.handle_command(c, payload)
                handled += 1
        pool.wait_backlog(max_backlog, stall_timeout_s)
        out = fleet.advance(next_t)
        pool.submit(Kind.TELEMETRY, out.controllers, out.payloads)
        for rows in out.sensors:
            pool.submit(Kind.TELEMETRY, rows.controllers, rows.payloads)
        messages += len(out)
        sensor_messages += out.sensor_messages
        _publish_json(fleet, pool)
        if on_progress is not None and time.monotonic() >= next_report:
            on_progress(progress())
            next_report += progress_every_s
    pool.wait_backlog(0, stall_timeout_s)
    final = progress()
    if on_progress is not None:
        on_progress(final)
    return final


def peak_rss_mib(pool: PublisherPool | None = None) -> float:
    """Peak RSS of this process plus the publishers' (after they stopped), in MiB."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if pool is not None:
        kib += pool.workers_peak_rss_kib()
    return kib / 1024.0
