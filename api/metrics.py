"""The API's Prometheus metrics (luciole_api_*), and the ASGI middleware that counts requests by
route template (never by raw path: ids would explode the label set).

With several workers (`luciole api serve`), PROMETHEUS_MULTIPROC_DIR names a directory the
workers share: each writes its values there, and /metrics, whichever worker answers, adds up
every worker's (prometheus-client's multiprocess mode). Without it (one process, the tests'
app), the process's own registry answers."""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import route_template


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("luciole_api_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.duration = Histogram("luciole_api_request_duration_seconds", "time to answer",
                                  ["route"], registry=self.registry,
                                  buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.commands = Counter("luciole_api_commands_published_total",
                                "per-controller commands the broker took", registry=self.registry)


    def exposition(self) -> bytes:
        """The text format of every worker's metrics (of this process's without a shared dir)."""
        if not shared():
            return bytes(generate_latest(self.registry))
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return bytes(generate_latest(registry))


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def shared() -> bool:
    """Whether this process writes its values to the shared directory (the variable was set
    before prometheus-client was imported)."""
    return bool(os.environ.get(MULTIPROC_ENV)) and values.ValueClass is not values.MutexValue


def worker_exited() -> None:
    """A worker stops: its live values leave the shared directory (its totals stay counted)."""
    if shared():
        mark_process_dead(os.getpid())


class MetricsMiddleware:
    """Counts each request by (method, route template, status) and times it by route template.
    The labelled children are looked up once per label set and kept (prometheus-client's
    `labels()` validates and locks on every call); the set is bounded by the routes, the HTTP
    methods the parser knows and the status codes."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            template = route_template(scope) or "unmatched"
            key = (scope["method"], template, status[0])
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.metrics.requests.labels(
                    key[0], template, str(key[2]))
            counter.inc()
            timer = self._timers.get(template)
            if timer is None:
                timer = self._timers[template] = self.metrics.duration.labels(template)
            timer.observe(time.perf_counter() - started)
