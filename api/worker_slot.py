"""Each API worker process takes one broker account of its own (the broker binds an account to
one client id): the first whose lock file it can hold. A dead worker's lock goes with it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from api.settings import MqttAccount


class NoFreeAccount(RuntimeError):
    """More API workers than broker accounts."""


def claim(accounts: list[MqttAccount], run_dir: Path | None) -> tuple[MqttAccount, IO[bytes]]:
    """The first free account and its held lock (keep the file open as long as it is used)."""
    names = ",".join(a.username for a in accounts)
    directory = run_dir or Path(tempfile.gettempdir()) / (
        "luciole-api-" + hashlib.sha256(names.encode()).hexdigest()[:12])
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for account in accounts:
        handle = open(directory / f"{account.username}.lock", "ab")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.truncate(0)
        handle.write(str(os.getpid()).encode())
        handle.flush()
        return account, handle
    raise NoFreeAccount(f"all {len(accounts)} API broker accounts are taken by other workers")
