"""Helpers of the ingest tests: a registered fleet, valid telemetry, a QoS 1 publisher, workers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from ingest.consumer import Consumer, Endpoint
from ingest.settings import IngestSettings
from luciole.stack import Endpoints, wait_for
from wire.codec import LUMINAIRE_DTYPE, encode_luminaire
from wire.topics import Kind, topic

REPO = Path(__file__).resolve().parents[2]
EAN = "541448800000000001"
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@dataclass
class Fleet:
    tenant: str
    keys: dict[str, int]  # controller id -> controllers.key

    def topic(self, controller: str, kind: Kind = Kind.TELEMETRY) -> str:
        return topic(self.tenant, controller, kind)


def register_fleet(dsn: str, controllers: int, tenant: str | None = None, ean: str = EAN) -> Fleet:
    """A tenant, one supply point and cabinet, and `controllers` controllers on it."""
    tenant = tenant or f"t{uuid.uuid4().hex[:8]}"
    names = [f"{tenant}-c{i:05d}" for i in range(controllers)]
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, tenant))
        conn.execute("INSERT INTO supply_points (ean, tenant_id, name) VALUES (%s, %s, 'sp')"
                     " ON CONFLICT DO NOTHING", (ean, tenant))
        cabinet = f"{tenant}-cab"
        conn.execute("INSERT INTO cabinets (id, tenant_id, supply_point_ean) VALUES (%s, %s, %s)",
                     (cabinet, tenant, ean))
        with conn.cursor().copy("COPY controllers (id, tenant_id, cabinet_id, status) FROM STDIN") as cp:
            for name in names:
                cp.write_row((name, tenant, cabinet, "active"))
        keys = dict(
            conn.execute("SELECT id, key FROM controllers WHERE tenant_id = %s", (tenant,)).fetchall()
        )
    return Fleet(tenant, keys)


def luminaire_records(n: int, time_us: int | np.ndarray, energy_wh: float | np.ndarray = 100.0,
                      first_luminaire: int = 0) -> np.ndarray:
    r = np.zeros(n, dtype=LUMINAIRE_DTYPE)
    r["time_us"] = time_us
    r["luminaire"] = np.arange(first_luminaire, first_luminaire + n)
    r["level"] = 200
    r["power_w"] = 40.0
    r["energy_wh"] = energy_wh
    r["voltage_v"] = 230.0
    r["current_a"] = 0.18
    r["power_factor"] = 0.95
    r["driver_temp_c"] = 45.0
    r["ambient_lux"] = 3.0
    return r


def poll_payloads(fleet: Fleet, polls: int, luminaires: int, boot_id: int = 7,
                  interval_us: int = 60_000_000, reset_at: int | None = None) -> list[tuple[str, bytes]]:
    """Each controller's polls in order: energy rising 10 Wh a poll, restarting from 5 Wh at
    poll `reset_at` (a driver replaced); seq counts records."""
    out = []
    for k in range(polls):
        energy = 1000.0 + 10.0 * k
        if reset_at is not None and k >= reset_at:
            energy = 5.0 + 10.0 * (k - reset_at)
        for controller in fleet.keys:
            records = luminaire_records(luminaires, T0_US + k * interval_us, energy)
            out.append((fleet.topic(controller), encode_luminaire(boot_id, k * luminaires, records)))
    return out


class Publisher:
    """A paho QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, ep: Endpoints) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(ep.mqtt_username, ep.mqtt_password)
        self.client.max_inflight_messages_set(200)
        self.client.connect(ep.mqtt_host, ep.mqtt_port)
        self.client.loop_start()

    def publish(self, messages: Sequence[tuple[str, bytes]], timeout_s: float = 60) -> None:
        infos = [self.client.publish(t, p, qos=1) for t, p in messages]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(max(0.01, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a publish in time"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()



def worker_settings(group: str, client_id: str, **overrides) -> IngestSettings:
    values = dict(share_group=group, client_id=client_id, session_expiry_s=120, metrics_port=0,
                  batch_max_wait_s=0.05, rollup_interval_s=0.2, registry_refresh_min_s=0.2,
                  retry_initial_s=0.05, retry_max_s=1.0)
    values.update(overrides)
    return IngestSettings(**values)


class ThreadWorker:
    """A Consumer running in a thread of the test process."""

    def __init__(self, settings: IngestSettings, ep: Endpoints, dsn: str) -> None:
        broker = Endpoint(ep.mqtt_host, ep.mqtt_port, ep.mqtt_username, ep.mqtt_password)
        self.consumer = Consumer(settings, broker, dsn)
        self.thread = threading.Thread(target=self.consumer.run, name="ingest-test", daemon=True)
        self.thread.start()
        assert self.consumer.wait_subscribed(15), "worker did not subscribe"

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


def unique_group() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


def worker_env(ep: Endpoints, dsn: str, group: str, client_id: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "LUCIOLE_INGEST_MQTT_HOST": ep.mqtt_host, "LUCIOLE_INGEST_MQTT_PORT": str(ep.mqtt_port),
        "LUCIOLE_INGEST_MQTT_USERNAME": ep.mqtt_username, "LUCIOLE_INGEST_MQTT_PASSWORD": ep.mqtt_password,
        "LUCIOLE_INGEST_DSN": dsn, "LUCIOLE_INGEST_SHARE_GROUP": group,
        "LUCIOLE_INGEST_CLIENT_ID": client_id, "LUCIOLE_INGEST_SESSION_EXPIRY_S": "300",
        "LUCIOLE_INGEST_METRICS_PORT": "0", "LUCIOLE_INGEST_BATCH_MAX_WAIT_S": "0.05",
        "LUCIOLE_INGEST_PROGRESS_EVERY_S": "1", "LUCIOLE_INGEST_RETRY_MAX_S": "1",
        "LUCIOLE_INGEST_ROLLUP_INTERVAL_S": "0.2",
    })
    env.update(extra)
    return env


class ProcessWorker:
    """`python -m ingest` as a child process, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")
        start = log_path.stat().st_size
        self.proc = subprocess.Popen([sys.executable, "-m", "ingest"], cwd=REPO, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_for(lambda: self._connected_since(start), 60, f"worker {env['LUCIOLE_INGEST_CLIENT_ID']}")

    def _connected_since(self, offset: int) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
        return b"mqtt subscribed" in self.log_path.read_bytes()[offset:]

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, timeout_s: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait(10)
        self._log.close()


def own_rejects(tenant: str) -> str:
    """A condition on ingest_rejects that leaves out the retained state messages (births, last
    wills) other tests left on the shared broker: Mosquitto delivers them to every new
    subscription, and ingest dead-letters them as unknown_controller."""
    return f"(topic NOT LIKE '%%/state' OR topic LIKE 'luciole/v1/{tenant}/%%')"


def scalar(dsn: str, sql: str, params: tuple = ()) -> object:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchone()[0]
