"""Run one ingest worker with the broker account and database role it is handed (settings),
/metrics on loopback, progress lines with rates, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
import time

from prometheus_client import start_http_server

from ingest.consumer import Consumer, Endpoint
from ingest.prepare import warm_up
from ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class MissingEndpoint(ValueError):
    """The settings do not say where the broker or the database is, or as whom to log in."""


def endpoints(settings: IngestSettings) -> tuple[Endpoint, str]:
    """Broker endpoint and DSN from the settings (`luciole ingest` fills them from the stack)."""
    missing = [name for name in ("mqtt_host", "mqtt_port", "mqtt_username", "mqtt_password", "dsn")
               if getattr(settings, name) is None]
    if missing:
        raise MissingEndpoint(
            "ingest needs " + ", ".join(f"LUCIOLE_INGEST_{m.upper()}" for m in missing)
            + " (or run it as `luciole ingest`, which hands in the local stack's)")
    assert settings.mqtt_host is not None and settings.mqtt_port is not None
    assert settings.mqtt_password is not None and settings.dsn is not None
    broker = Endpoint(settings.mqtt_host, settings.mqtt_port, settings.mqtt_username,
                      settings.mqtt_password.get_secret_value())
    return broker, settings.dsn.get_secret_value()


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

    def _stop(signum: int, _frame: object) -> None:
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
