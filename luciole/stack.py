"""The local stack: Mosquitto 2 and PostgreSQL 15 + TimescaleDB as child processes under a var dir."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from luciole.broker_config import BrokerAccount, Role, render_acl, render_mosquitto_conf
from luciole.settings import StackSettings
from luciole.tls import ensure_server_certificate

log = logging.getLogger(__name__)

SERVICE_USER = "luciole"
DATABASE = "luciole"
PG_USER = "luciole"


class StackError(RuntimeError):
    """The stack could not be started, reached or stopped; the message says why."""


@dataclass
class Endpoints:
    """Where the running stack listens and how to log in (kept in var/stack.json, mode 0600)."""

    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str = DATABASE
    mqtt_tls_port: int | None = None
    mqtt_ca_file: str | None = None
    mosquitto_pid: int | None = None
    postgres_pid: int | None = None

    def dsn(self, database: str | None = None) -> str:
        return (
            f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}"
            f"/{database or self.pg_database}"
        )

    def public(self) -> dict[str, object]:
        """Endpoints without secrets, for printing."""
        return {
            "mqtt_url": f"mqtt://{self.mqtt_host}:{self.mqtt_port} (user {self.mqtt_username})",
            "mqtts_url": (f"mqtts://{self.mqtt_host}:{self.mqtt_tls_port} (CA {self.mqtt_ca_file})"
                          if self.mqtt_tls_port else None),
            "postgres_url": f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}",
            "mosquitto_pid": self.mosquitto_pid,
            "postgres_pid": self.postgres_pid,
        }


def port_is_free(host: str, port: int) -> bool:
    """True when a listener could bind host:port now (a port in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def choose_port(host: str, preferred: int, taken: set[int]) -> int:
    if preferred and preferred not in taken and port_is_free(host, preferred):
        return preferred
    for _ in range(100):
        port = free_port(host)
        if port not in taken:
            return port
    raise StackError(f"no free port on {host}")


def pid_alive(pid: int | None, needle: str | None = None) -> bool:
    """True when pid runs and (if given) its command line contains needle (guards pid reuse)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    if "\nState:\tZ" in status:
        return False
    return needle is None or needle in cmdline


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # noqa: BLE001 - reported below if the deadline passes
            last_error = exc
        time.sleep(interval_s)
    raise StackError(f"{what} not ready after {timeout_s:.0f}s" + (f": {last_error}" if last_error else ""))


def tcp_accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Stack:
    """Starts, inspects and stops the broker and the database of one var dir."""

    settings: StackSettings = field(default_factory=StackSettings)

    def __post_init__(self) -> None:
        self.var = self.settings.var_dir.resolve()
        self.mq_dir = self.var / "mosquitto"
        self.pg_dir = self.var / "pg"
        self.pg_data = self.pg_dir / "data"
        self.state_file = self.var / "stack.json"
        self.as_root = os.geteuid() == 0
        self._pg_user = pwd.getpwnam("postgres") if self.as_root else None

    # ---------------------------------------------------------------- state
    def _load(self) -> Endpoints | None:
        try:
            return Endpoints(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _save(self, endpoints: Endpoints) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(endpoints), indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    def endpoints(self) -> Endpoints:
        found = self._load()
        if found is None:
            raise StackError(f"no stack state in {self.state_file}; run `luciole stack up`")
        return found

    # ---------------------------------------------------------------- up
    def up(self) -> Endpoints:
        self.var.mkdir(parents=True, exist_ok=True)
        previous = self._load()
        s = self.settings
        endpoints = previous or Endpoints(
            mqtt_host=s.bind,
            mqtt_port=0,
            mqtt_username=SERVICE_USER,
            mqtt_password=secrets.token_urlsafe(24),
            pg_host=s.bind,
            pg_port=0,
            pg_user=PG_USER,
            pg_password=secrets.token_urlsafe(24),
        )
        endpoints.mqtt_host = endpoints.pg_host = s.bind
        mq_running = pid_alive(endpoints.mosquitto_pid, str(self.mq_dir))
        pg_running = pid_alive(endpoints.postgres_pid, str(self.pg_data))
        taken: set[int] = set()
        if pg_running:
            taken.add(endpoints.pg_port)
        if mq_running:
            taken.add(endpoints.mqtt_port)
        if not pg_running:
            endpoints.pg_port = choose_port(s.bind, endpoints.pg_port or s.pg_port, taken)
            taken.add(endpoints.pg_port)
        if not mq_running:
            endpoints.mqtt_port = choose_port(s.bind, endpoints.mqtt_port or s.mqtt_port, taken)
            taken.add(endpoints.mqtt_port)
            if s.mqtt_tls_port is None:
                endpoints.mqtt_tls_port = endpoints.mqtt_ca_file = None
            else:
                endpoints.mqtt_tls_port = choose_port(
                    s.bind, endpoints.mqtt_tls_port or s.mqtt_tls_port, taken
                )
        self._save(endpoints)  # secrets survive a failed start
        if not pg_running:
            endpoints.postgres_pid = self._start_postgres(endpoints)
            self._save(endpoints)
        if not mq_running:
            endpoints.mosquitto_pid = self._start_mosquitto(endpoints)
            self._save(endpoints)
        self._wait_ready(endpoints)
        return endpoints

    def _chown_for_postgres(self, path: Path) -> None:
        if self._pg_user is not None:
            os.chown(path, self._pg_user.pw_uid, self._pg_user.pw_gid)

    def _ensure_traversable(self, path: Path) -> None:
        """postgres (a non-root user) must be able to reach its data dir through our dirs."""
        if not self.as_root:
            return
        for parent in [path, *path.parents]:
            try:
                mode = parent.stat().st_mode
            except OSError:
                continue
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
            if parent == Path("/"):
                break

    def _as_postgres(self) -> dict[str, object]:
        """Popen arguments that drop root to the postgres user and group (initdb refuses root)."""
        if not self.as_root:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _run_as_postgres(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, **self._as_postgres(), **kwargs)

    def _start_postgres(self, endpoints: Endpoints) -> int:
        s = self.settings
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_postgres(self.pg_dir)
        self._ensure_traversable(self.pg_dir)
        fresh = not (self.pg_data / "PG_VERSION").exists()
        if fresh:
            pwfile = self.pg_dir / ".pwfile"
            pwfile.write_text(endpoints.pg_password + "\n")
            pwfile.chmod(0o600)
            self._chown_for_postgres(pwfile)
            try:
                result = self._run_as_postgres(
                    [
                        str(s.pg_bin / "initdb"),
                        "-D", str(self.pg_data),
                        "-U", PG_USER,
                        "--pwfile", str(pwfile),
                        "--auth-host=scram-sha-256",
                        "--auth-local=scram-sha-256",
                        "--encoding=UTF8",
                        "--locale=C.UTF-8",
                        "--data-checksums" if s.pg_fsync else "--no-sync",
                    ],
                    timeout=120,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if result.returncode != 0:
                raise StackError(f"initdb failed: {result.stderr.strip()}")
        self._clear_stale_postmaster_pid()
        log_file = self.pg_dir / "postgres.log"
        options = {
            "listen_addresses": s.bind,
            "port": str(endpoints.pg_port),
            "unix_socket_directories": "",
            "shared_preload_libraries": "timescaledb",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            "shared_buffers": s.pg_shared_buffers,
            "max_wal_size": "4GB",
            "checkpoint_timeout": "15min",
            "fsync": "on" if s.pg_fsync else "off",
            # commits survive a crash of postgres itself even when fsync is off (tests)
            "synchronous_commit": "on",
            "full_page_writes": "on" if s.pg_fsync else "off",
            "password_encryption": "scram-sha-256",
            "log_min_messages": "warning",
            "logging_collector": "off",
        }
        argv = [str(s.pg_bin / "postgres"), "-D", str(self.pg_data)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        with open(log_file, "ab") as out:
            if self._pg_user is not None:
                os.chown(log_file, self._pg_user.pw_uid, self._pg_user.pw_gid)
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as_postgres(),
            )
        log.info("postgres started pid=%d port=%d", proc.pid, endpoints.pg_port)

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"postgres exited with {proc.returncode}; see {log_file}")
            with psycopg.connect(endpoints.dsn("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True

        wait_for(ready, s.start_timeout_s, "postgres")
        if fresh or not self._database_exists(endpoints):
            with psycopg.connect(endpoints.dsn("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
        return proc.pid

    def _database_exists(self, endpoints: Endpoints) -> bool:
        with psycopg.connect(endpoints.dsn("postgres")) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        return row is not None

    def _clear_stale_postmaster_pid(self) -> None:
        """Remove postmaster.pid left by a crash when its pid is not a postgres of this data dir."""
        pidfile = self.pg_data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if pid_alive(pid, str(self.pg_data)):
            raise StackError(f"a postgres (pid {pid}) already runs on {self.pg_data}")
        log.warning("removing stale %s (pid %d is gone)", pidfile, pid)
        pidfile.unlink(missing_ok=True)

    def accounts_file(self) -> Path:
        return self.mq_dir / "accounts.json"

    def broker_accounts(self) -> list[BrokerAccount]:
        try:
            raw = json.loads(self.accounts_file().read_text())
        except (OSError, ValueError):
            raw = []
        return [BrokerAccount(a["username"], Role(a["role"]), a.get("tenant"), a.get("controller")) for a in raw]

    def _write_accounts(self, accounts: list[BrokerAccount]) -> None:
        self.accounts_file().write_text(json.dumps([asdict(a) for a in accounts], indent=2))
        acl = self.mq_dir / "acl"
        acl.write_text(render_acl(accounts))
        acl.chmod(0o600)

    def set_broker_password(self, username: str, password: str) -> None:
        """Store a hashed password (PBKDF2-SHA512 via mosquitto_passwd) for username."""
        passwd = self.mq_dir / "passwd"
        if not passwd.exists():
            passwd.touch(mode=0o600)
        result = subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), username, password],
            capture_output=True, text=True, timeout=30,
        )
        if result.returncode != 0:
            raise StackError(f"mosquitto_passwd failed: {result.stderr.strip() or result.stdout.strip()}")

    def add_broker_account(self, account: BrokerAccount, password: str) -> None:
        """Create or update an account and reload the broker if it runs."""
        self.mq_dir.mkdir(parents=True, exist_ok=True)
        accounts = [a for a in self.broker_accounts() if a.username != account.username] + [account]
        self.set_broker_password(account.username, password)
        self._write_accounts(accounts)
        self.reload_broker()

    def reload_broker(self) -> None:
        found = self._load()
        if found and pid_alive(found.mosquitto_pid, str(self.mq_dir)):
            os.kill(found.mosquitto_pid, signal.SIGHUP)

    def _start_mosquitto(self, endpoints: Endpoints) -> int:
        s = self.settings
        data = self.mq_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        accounts = [a for a in self.broker_accounts() if a.username != SERVICE_USER]
        accounts.append(BrokerAccount(SERVICE_USER, Role.SERVICE))
        self.set_broker_password(SERVICE_USER, endpoints.mqtt_password)
        self._write_accounts(accounts)
        conf = self.mq_dir / "mosquitto.conf"
        log_file = self.mq_dir / "mosquitto.log"
        tls = None
        if endpoints.mqtt_tls_port is not None:
            tls = ensure_server_certificate(self.mq_dir / "tls", [s.bind, "localhost"])
            endpoints.mqtt_ca_file = str(tls.cafile)
        conf.write_text(
            render_mosquitto_conf(
                bind=s.bind,
                port=endpoints.mqtt_port,
                data_dir=data,
                password_file=self.mq_dir / "passwd",
                acl_file=self.mq_dir / "acl",
                log_file=log_file,
                max_queued_messages=s.mqtt_max_queued_messages,
                max_inflight_messages=s.mqtt_max_inflight_messages,
                run_as_root=self.as_root,
                tls_port=endpoints.mqtt_tls_port,
                tls=tls,
            )
        )
        with open(self.mq_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                [str(s.mosquitto_bin), "-c", str(conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        log.info("mosquitto started pid=%d port=%d", proc.pid, endpoints.mqtt_port)

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"mosquitto exited with {proc.returncode}; see {log_file}")
            return tcp_accepts(s.bind, endpoints.mqtt_port)

        wait_for(ready, s.start_timeout_s, "mosquitto")
        return proc.pid

    def _wait_ready(self, endpoints: Endpoints) -> None:
        s = self.settings
        wait_for(lambda: tcp_accepts(s.bind, endpoints.mqtt_port), s.start_timeout_s, "mosquitto")
        with psycopg.connect(endpoints.dsn(), connect_timeout=5) as conn:
            conn.execute("SELECT 1")

    # ---------------------------------------------------------------- status / down
    def status(self) -> dict[str, object]:
        found = self._load()
        if found is None:
            return {"mosquitto": "absent", "postgres": "absent"}
        return {
            "mosquitto": "running" if pid_alive(found.mosquitto_pid, str(self.mq_dir)) else "stopped",
            "postgres": "running" if pid_alive(found.postgres_pid, str(self.pg_data)) else "stopped",
            **found.public(),
        }

    def down(self, timeout_s: float = 30.0) -> None:
        found = self._load()
        if found is None:
            return
        _stop(found.mosquitto_pid, str(self.mq_dir), signal.SIGTERM, timeout_s, "mosquitto")
        # SIGINT is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit.
        _stop(found.postgres_pid, str(self.pg_data), signal.SIGINT, timeout_s, "postgres")
        found.mosquitto_pid = found.postgres_pid = None
        self._save(found)


def _stop(pid: int | None, needle: str, sig: int, timeout_s: float, what: str) -> None:
    if not pid_alive(pid, needle):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid, needle):
            _reap(pid)
            return
        time.sleep(0.05)
    log.warning("%s (pid %d) did not stop in %.0fs; killing its process group", what, pid, timeout_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid, needle), 10, f"{what} to die")
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status if pid is our own child (same process started it)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
