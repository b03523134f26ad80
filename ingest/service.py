"""Run one ingest worker: endpoints from settings or the local stack, /metrics on loopback,
progress lines with rates, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time

from prometheus_client import start_http_server

from ingest.prepare import warm_up
from ingest.consumer import Consumer, Endpoint
from ingest.settings import IngestSettings
from luciole.settings import StackSettings
from luciole.stack import Stack

log = logging.getLogger(__name__)


def endpoints(settings: IngestSettings) -> tuple[Endpoint, str]:
    """Broker endpoint and DSN: explicit settings win, the rest comes from var/stack.json."""
    need_stack = settings.mqtt_host is None or settings.mqtt_port is None or settings.dsn is None
    stack = Stack(StackSettings(var_dir=settings.var_dir)).endpoints() if need_stack else None
    host = settings.mqtt_host or stack.mqtt_host  # type: ignore[union-attr]
    port = settings.mqtt_port or stack.mqtt_port  # type: ignore[union-attr]
    if settings.mqtt_username is not None:
        username = settings.mqtt_username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    else:
        username, password = stack.mqtt_username, stack.mqtt_password  # type: ignore[union-attr]
    dsn = settings.dsn.get_secret_value() if settings.dsn else stack.dsn()  # type: ignore[union-attr]
    return Endpoint(host, port, username, password), dsn


def _progress(consumer: Consumer, every_s: float, stop: threading.Event) -> None:
    last_t, last = time.monotonic(), (0, 0)
    while not stop.wait(every_s):
        now, t = time.monotonic(), consumer.totals
        dt = max(now - last_t, 1e-9)
        log.info(
            "progress messages=%d records=%d msg_rate=%.0f/s rec_rate=%.0f/s duplicates=%d "
            "rejects=%d db_errors=%d internal_errors=%d batches=%d unacked=%d peak_unacked=%d",
            t.messages, t.records, (t.messages - last[0]) / dt, (t.records - last[1]) / dt,
            t.duplicates, t.rejects, t.db_errors, t.internal_errors, t.batches, consumer.unacked(),
            consumer.peak_unacked,
        )
        last_t, last = now, (t.messages, t.records)


def run(settings: IngestSettings) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    broker, dsn = endpoints(settings)
    warm_up()
    consumer = Consumer(settings, broker, dsn)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)

    def _stop(signum, _frame) -> None:
        log.info("signal %d: stopping after the current batch", signum)
        consumer.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    done = threading.Event()
    progress = threading.Thread(target=_progress, args=(consumer, settings.progress_every_s, done),
                                name="ingest-progress", daemon=True)
    progress.start()
    log.info("ingest worker client_id=%s broker=%s:%d", settings.client_id, broker.host, broker.port)
    try:
        consumer.run()
    finally:
        done.set()
        progress.join(timeout=1)
    log.info("ingest worker stopped messages=%d records=%d", consumer.totals.messages,
             consumer.totals.records)
