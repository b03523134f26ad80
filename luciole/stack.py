"""The local stack: Mosquitto 2 and PostgreSQL 15 + TimescaleDB as child processes under a var dir."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import psycopg
from psycopg.conninfo import make_conninfo

from luciole.broker_admin import BrokerAdmin
from luciole.broker_config import (
    BrokerAccount,
    Role,
    hash_password,
    new_secret,
    refresh_roles,
    render_dynsec_config,
    render_mosquitto_conf,
)
from luciole.db_roles import OWNER, DbService, create_database, ensure_roles
from luciole.settings import StackSettings
from luciole.tls import ensure_server_certificate

log = logging.getLogger(__name__)

ADMIN_USER = "luciole-admin"  # the broker's dynamic-security admin: launcher and CLI only
DATABASE = "luciole"
PG_ADMIN_USER = "luciole_admin"  # the cluster's bootstrap superuser: launcher only
MOSQUITTO_USER = "mosquitto"  # Mosquitto drops to this user when started as root


class StackError(RuntimeError):
    """The stack could not be started, reached or stopped; the message says why."""



class _AsUser(TypedDict, total=False):
    """Popen's arguments that run a child as another user."""

    user: str
    group: str
    extra_groups: list[str]

@dataclass
class Endpoints:
    """Where the running stack listens and its accounts (var/stack.json, mode 0600).

    `mqtt_username` is the broker's admin (accounts over $CONTROL), `pg_user` the database
    owner (migrations), `pg_admin_user` the cluster superuser (roles, databases): the launcher
    and the command line use them; each service gets an account of its own from
    `broker_passwords` and `db_passwords`, handed in by the command line."""

    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    mqtt_password: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_admin_user: str
    pg_admin_password: str
    db_passwords: dict[str, str] = field(default_factory=dict)
    broker_passwords: dict[str, str] = field(default_factory=dict)
    pg_database: str = DATABASE
    mqtt_tls_port: int | None = None
    mqtt_ca_file: str | None = None
    mosquitto_pid: int | None = None
    postgres_pid: int | None = None

    def _dsn(self, user: str, password: str, database: str | None) -> str:
        return make_conninfo(host=self.pg_host, port=self.pg_port, user=user, password=password,
                             dbname=database or self.pg_database)

    def dsn(self, database: str | None = None) -> str:
        """The owner's DSN: migrations, seeding, inspection."""
        return self._dsn(self.pg_user, self.pg_password, database)

    def admin_dsn(self, database: str = "postgres") -> str:
        """The cluster superuser's DSN: the launcher only (roles, databases, extensions)."""
        return self._dsn(self.pg_admin_user, self.pg_admin_password, database)

    def service_dsn(self, service: DbService, database: str | None = None) -> str:
        """A service's own login role."""
        return self._dsn(service.value, self.db_passwords[service.value], database)

    def public(self) -> dict[str, object]:
        """Endpoints without secrets, for printing."""
        return {
            "mqtt_url": f"mqtt://{self.mqtt_host}:{self.mqtt_port} (admin {self.mqtt_username})",
            "mqtts_url": (f"mqtts://{self.mqtt_host}:{self.mqtt_tls_port} (CA {self.mqtt_ca_file})"
                          if self.mqtt_tls_port else None),
            "postgres_url": f"postgresql://{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}",
            "broker_service_accounts": sorted(self.broker_passwords),
            "database_roles": [self.pg_user, *sorted(self.db_passwords)],
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
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        if "pg_admin_user" not in raw:
            raise StackError(
                f"{self.state_file} comes from a Luciole without per-service accounts; stop that "
                f"stack (`luciole stack down`) and remove {self.var} to start afresh")
        try:
            return Endpoints(**raw)
        except TypeError:
            return None

    def _save(self, endpoints: Endpoints) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(endpoints), indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise read-modify-write of the stack file between processes."""
        self.var.mkdir(parents=True, exist_ok=True)
        with open(self.var / "stack.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def endpoints(self) -> Endpoints:
        found = self._load()
        if found is None:
            raise StackError(f"no stack state in {self.state_file}; run `luciole stack up`")
        return found

    # ---------------------------------------------------------------- accounts
    def broker_admin(self, endpoints: Endpoints | None = None) -> BrokerAdmin:
        e = endpoints or self.endpoints()
        return BrokerAdmin(e.mqtt_host, e.mqtt_port, e.mqtt_username, e.mqtt_password)

    def service_account(self, username: str, role: Role) -> tuple[str, str]:
        """(username, password) of a service's broker account, created on first use over
        $CONTROL; its password is kept in the stack file for the command line to hand in."""
        account = BrokerAccount(username, role)
        with self._locked():
            endpoints = self.endpoints()
            password = endpoints.broker_passwords.get(username)
            if password is not None:
                return username, password
            password = new_secret()
            with self.broker_admin(endpoints) as admin:
                admin.ensure_account(account, password)
            endpoints.broker_passwords[username] = password
            self._save(endpoints)
        return username, password

    def add_broker_account(self, account: BrokerAccount, password: str) -> None:
        """Create or update an account (a controller's) on the running broker."""
        with self.broker_admin() as admin:
            admin.ensure_account(account, password)

    # ---------------------------------------------------------------- up
    def up(self) -> Endpoints:
        with self._locked():
            return self._up()

    def _up(self) -> Endpoints:
        self.var.mkdir(parents=True, exist_ok=True)
        previous = self._load()
        s = self.settings
        if previous is None and (self.pg_data / "PG_VERSION").exists():
            raise StackError(f"{self.pg_data} exists but {self.state_file} is gone: its "
                             "passwords are lost; remove the var dir to start afresh")
        endpoints = previous or Endpoints(
            mqtt_host=s.bind,
            mqtt_port=0,
            mqtt_username=ADMIN_USER,
            mqtt_password=new_secret(),
            pg_host=s.bind,
            pg_port=0,
            pg_user=OWNER,
            pg_password=new_secret(),
            pg_admin_user=PG_ADMIN_USER,
            pg_admin_password=new_secret(),
        )
        for service in DbService:
            endpoints.db_passwords.setdefault(service.value, new_secret())
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
            endpoints.mqtt_port = choose_port("127.0.0.1", endpoints.mqtt_port or s.mqtt_port,
                                              taken)
            taken.add(endpoints.mqtt_port)
            if s.mqtt_tls_port is None:
                endpoints.mqtt_tls_port = endpoints.mqtt_ca_file = None
            else:
                endpoints.mqtt_tls_port = choose_port(
                    s.mqtt_tls_bind or s.bind, endpoints.mqtt_tls_port or s.mqtt_tls_port, taken
                )
        self._save(endpoints)  # secrets survive a failed start
        if not pg_running:
            endpoints.postgres_pid = self._start_postgres(endpoints)
            self._save(endpoints)
        if not mq_running:
            endpoints.mosquitto_pid = self._start_mosquitto(endpoints)
            self._save(endpoints)
        self._wait_ready(endpoints)
        if mq_running:  # a broker started by an older Luciole: its device roles, upgraded live
            with self.broker_admin(endpoints) as admin:
                upgraded = admin.upgrade_device_roles()
            if upgraded:
                log.info("broker device roles upgraded count=%d", upgraded)
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

    def _as_postgres(self) -> _AsUser:
        """Popen arguments that drop root to the postgres user and group (initdb refuses root)."""
        if not self.as_root:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _run_as_postgres(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, **self._as_postgres(), **kwargs)

    def _start_postgres(self, endpoints: Endpoints) -> int:
        s = self.settings
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_postgres(self.pg_dir)
        self._ensure_traversable(self.pg_dir)
        fresh = not (self.pg_data / "PG_VERSION").exists()
        if fresh:
            pwfile = self.pg_dir / ".pwfile"
            pwfile.write_text(endpoints.pg_admin_password + "\n")
            pwfile.chmod(0o600)
            self._chown_for_postgres(pwfile)
            try:
                result = self._run_as_postgres(
                    [
                        str(s.pg_bin / "initdb"),
                        "-D", str(self.pg_data),
                        "-U", PG_ADMIN_USER,
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
            with psycopg.connect(endpoints.admin_dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True

        wait_for(ready, s.start_timeout_s, "postgres")
        ensure_roles(endpoints.admin_dsn(), endpoints.pg_password, endpoints.db_passwords)
        if fresh or not self._database_exists(endpoints):
            create_database(endpoints.admin_dsn(), DATABASE)
        return proc.pid

    def _database_exists(self, endpoints: Endpoints) -> bool:
        with psycopg.connect(endpoints.admin_dsn()) as conn:
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

    def dynsec_file(self) -> Path:
        return self.mq_dir / "dynamic-security.json"

    def _write_dynsec(self, endpoints: Endpoints) -> None:
        """The plugin's file: made once with the admin; afterwards the service roles are brought
        up to date and device roles given what they lack (the accounts added over $CONTROL are
        kept)."""
        path = self.dynsec_file()
        try:
            config = refresh_roles(json.loads(path.read_text()))
        except (OSError, ValueError):
            admin = BrokerAccount(endpoints.mqtt_username, Role.ADMIN)
            config = render_dynsec_config([(admin, hash_password(endpoints.mqtt_password))])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        tmp.chmod(0o600)
        tmp.replace(path)

    def _give_to_mosquitto(self) -> None:
        """Started as root, Mosquitto runs as `mosquitto`: it must own its files (the plugin
        rewrites its JSON, persistence writes its store)."""
        if not self.as_root:
            return
        user = pwd.getpwnam(MOSQUITTO_USER)
        self._ensure_traversable(self.mq_dir)
        for path in [self.mq_dir, *self.mq_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _start_mosquitto(self, endpoints: Endpoints) -> int:
        s = self.settings
        data = self.mq_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.mq_dir.chmod(0o700)
        self._write_dynsec(endpoints)
        conf = self.mq_dir / "mosquitto.conf"
        log_file = self.mq_dir / "mosquitto.log"
        tls = None
        if endpoints.mqtt_tls_port is not None:
            tls = ensure_server_certificate(self.mq_dir / "tls", [s.mqtt_tls_bind or s.bind,
                                                                  "localhost"])
            endpoints.mqtt_ca_file = str(tls.cafile)
        conf.write_text(
            render_mosquitto_conf(
                port=endpoints.mqtt_port,
                data_dir=data,
                dynsec_file=self.dynsec_file(),
                log_file=log_file,
                max_queued_messages=s.mqtt_max_queued_messages,
                max_inflight_messages=s.mqtt_max_inflight_messages,
                tls_port=endpoints.mqtt_tls_port,
                tls_bind=s.mqtt_tls_bind or s.bind,
                tls=tls,
            )
        )
        self._give_to_mosquitto()
        if tls is not None and self.as_root:
            tls.cafile.chmod(0o644)  # controllers' copy of the CA; the keys stay 0600
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
            return tcp_accepts("127.0.0.1", endpoints.mqtt_port)

        wait_for(ready, s.start_timeout_s, "mosquitto")
        return proc.pid

    def _wait_ready(self, endpoints: Endpoints) -> None:
        s = self.settings
        wait_for(lambda: tcp_accepts("127.0.0.1", endpoints.mqtt_port), s.start_timeout_s,
                 "mosquitto")
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
