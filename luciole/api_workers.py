"""`luciole api serve`'s workers and their supervisor. uvicorn's own supervisor hands every
worker one shared listening socket, and whichever worker is idle in epoll takes the next
connection: a run's 32 keep-alive connections split 25/7, and the busier worker set the p99.
Here each worker binds its OWN socket on the same host:port with SO_REUSEPORT, so the kernel
spreads connections over the workers by a hash of their addresses; the supervisor starts them,
replaces one that dies (with backoff, giving up on a crash loop), and stops them all on SIGINT or
SIGTERM. A worker runs `uvicorn.Server` with the settings uvicorn.run had."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from wire.retry import Attempts, Backoff

log = logging.getLogger(__name__)

APP = "luciole.api_serve:app"
BACKLOG = 2048
STARTUP_FAILURE = 3  # a worker's exit status when its app did not start


def listening_socket(host: str, port: int, backlog: int | None = BACKLOG) -> socket.socket:
    """A TCP socket on host:port that other sockets of this user may bind too (SO_REUSEPORT);
    listening unless `backlog` is None (then it only holds the port: the kernel hands
    connections to listening sockets only)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if backlog is not None:
            sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def run_worker(host: str, port: int, ready_fd: int | None = None) -> int:
    """One worker: its own socket, uvicorn with the API's protocol and loop. The app's settings
    come from the environment the command line prepared. Once the app has started (its
    lifespan) and the socket serves, one byte on `ready_fd` tells the supervisor."""
    import uvicorn

    from luciole import api_http

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if ready_fd is not None and not self.should_exit:
                os.write(ready_fd, b"r")

    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level="warning",
                            access_log=False, timeout_keep_alive=30, loop="uvloop",
                            http=api_http.IMPORT_PATH, backlog=BACKLOG)
    sock = listening_socket(host, port)
    server = Server(config)
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


@dataclass
class RestartPolicy:
    """When to start a dead worker again. A worker that served (its app started) for `healthy_s`
    or longer died of something passing: it is replaced at once. One that never served (a crash
    at start) or died sooner (a crash loop) waits a backoff that doubles each time; after
    `give_up_after` such deaths in a row the supervisor stops everything and exits non-zero
    instead of spinning. Pure: the caller sleeps."""

    healthy_s: float = 10.0
    give_up_after: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, max_s=8.0, jitter=0.2))

    def tracker(self) -> Attempts:
        return Attempts(self.backoff)

    def after_exit(self, attempts: Attempts, served_s: float | None) -> float | None:
        """Seconds to wait before starting the worker again, or None: give up. `served_s`: how
        long it served, None if it never did."""
        if served_s is not None and served_s >= self.healthy_s:
            attempts.succeeded()
            return 0.0
        wait = attempts.failed()
        return None if attempts.failures >= self.give_up_after else wait


@dataclass
class Slot:
    """One worker place: its process (None while waiting to restart) and its failures."""

    number: int
    attempts: Attempts
    process: subprocess.Popen[bytes] | None = None
    pidfd: int = -1
    ready_fd: int = -1  # the read end of the worker's "serving" pipe, until it speaks or dies
    started: float = 0.0
    ready_at: float | None = None
    due: float = 0.0  # when to start it again (monotonic) while process is None


class Supervisor:
    """Starts `workers` processes (`command(slot, ready_fd)` each: the worker writes a byte on
    ready_fd once it serves), replaces the ones that die, stops all on SIGINT/SIGTERM.
    `on_exit(pid)` runs for each worker that ended (its metrics files)."""

    def __init__(self, command: Callable[[int, int], list[str]], workers: int,
                 policy: RestartPolicy | None = None,
                 on_exit: Callable[[int], None] = lambda pid: None,
                 stop_timeout_s: float = 30.0) -> None:
        self.command, self.policy, self.on_exit = command, policy or RestartPolicy(), on_exit
        self.stop_timeout_s = stop_timeout_s
        self.slots = [Slot(i + 1, self.policy.tracker()) for i in range(workers)]
        self._stopping: int | None = None  # the signal that asked to stop

    def _start(self, slot: Slot) -> None:
        ready_r, ready_w = os.pipe()
        try:
            slot.process = subprocess.Popen(self.command(slot.number, ready_w), pass_fds=[ready_w])
        except OSError:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        slot.pidfd = os.pidfd_open(slot.process.pid)
        slot.ready_fd, slot.ready_at = ready_r, None
        slot.started = time.monotonic()
        log.info("api worker started slot=%d pid=%d", slot.number, slot.process.pid)

    def _reap(self, slot: Slot) -> int | None:
        """The worker's exit status once it has ended (its pidfd closed), else None."""
        assert slot.process is not None
        code = slot.process.poll()
        if code is None:
            return None
        os.close(slot.pidfd)
        self._close_ready(slot)
        pid, slot.process, slot.pidfd = slot.process.pid, None, -1
        self.on_exit(pid)
        return code

    def _close_ready(self, slot: Slot) -> None:
        if slot.ready_fd >= 0:
            os.close(slot.ready_fd)
            slot.ready_fd = -1

    def _check_ready(self, slot: Slot, readable: list[int]) -> None:
        if slot.ready_fd in readable:
            if os.read(slot.ready_fd, 16) and slot.ready_at is None:
                slot.ready_at = time.monotonic()
                log.info("api worker serving slot=%d pid=%d after %.1f s", slot.number,
                         slot.process.pid if slot.process else -1, slot.ready_at - slot.started)
            self._close_ready(slot)

    def _signalled(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = signum

    def run(self) -> int:
        """Until a stop signal (0) or a crash loop (1)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous_fd = signal.set_wakeup_fd(wake_w)
        handlers = {s: signal.signal(s, self._signalled) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for slot in self.slots:
                self._start(slot)
            return self._watch(wake_r)
        finally:
            self._stop_all()
            for s, handler in handlers.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(wake_r)
            os.close(wake_w)

    def _watch(self, wake_r: int) -> int:
        while self._stopping is None:
            now = time.monotonic()
            waiting = [s.due for s in self.slots if s.process is None]
            timeout = max(0.0, min(waiting) - now) if waiting else None
            fds = [fd for s in self.slots if s.process is not None for fd in (s.pidfd, s.ready_fd)
                   if fd >= 0]
            readable, _, _ = select.select([wake_r, *fds], [], [], timeout)
            if wake_r in readable:
                os.read(wake_r, 512)
            for slot in self.slots:
                if self._stopping is not None:
                    break
                if slot.process is None:
                    if slot.due <= time.monotonic():
                        self._start(slot)
                    continue
                self._check_ready(slot, readable)
                pid, ready_at = slot.process.pid, slot.ready_at
                code = self._reap(slot)
                if code is None:
                    continue
                ran = time.monotonic() - slot.started
                served = None if ready_at is None else time.monotonic() - ready_at
                wait = self.policy.after_exit(slot.attempts, served)
                how = "never served" if served is None else f"served {served:.1f} s"
                if wait is None:
                    log.error("api worker slot=%d pid=%d exited status=%d after %.1f s (%s), the "
                              "%d-th quick exit in a row: giving up", slot.number, pid, code, ran,
                              how, slot.attempts.failures)
                    return 1
                log.warning("api worker slot=%d pid=%d exited status=%d after %.1f s (%s); "
                            "restarting in %.1f s", slot.number, pid, code, ran, how, wait)
                slot.due = time.monotonic() + wait
        log.info("api stopping signal=%s", signal.Signals(self._stopping).name)
        return 0

    def _stop_all(self) -> None:
        """SIGTERM to every worker (uvicorn finishes its requests), SIGKILL past the timeout."""
        running = [s for s in self.slots if s.process is not None]
        for slot in running:
            assert slot.process is not None
            slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        for slot in running:
            assert slot.process is not None
            try:
                slot.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("api worker slot=%d pid=%d did not stop: killed", slot.number,
                            slot.process.pid)
                slot.process.kill()
                slot.process.wait()
            self._reap(slot)


def serve(host: str, port: int, workers: int, policy: RestartPolicy | None = None) -> int:
    """Hold host:port (a bound socket, not listening), then supervise `workers` workers on it."""
    from prometheus_client.multiprocess import mark_process_dead

    holder = listening_socket(host, port, backlog=None)
    port = holder.getsockname()[1]

    def command(slot: int, ready_fd: int) -> list[str]:
        return [sys.executable, "-m", __name__, "--host", host, "--port", str(port),
                "--ready-fd", str(ready_fd), "--parent", str(os.getpid())]

    def exited(pid: int) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            mark_process_dead(pid)

    try:
        return Supervisor(command, workers, policy, on_exit=exited).run()
    finally:
        holder.close()


PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies, even by SIGKILL (which it cannot forward):
    no worker is left serving on its own. Linux's prctl; elsewhere nothing is done."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description="one API worker (started by `luciole api serve`)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, help="written to once the worker serves")
    parser.add_argument("--parent", type=int, help="the supervisor's pid")
    args = parser.parse_args()
    if args.parent:
        _end_with_parent(args.parent)
    logging.basicConfig(level=logging.WARNING)
    return run_worker(args.host, args.port, args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
