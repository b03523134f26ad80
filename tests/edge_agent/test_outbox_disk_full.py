"""Disk full under the agent's outbox (a file size limit, RLIMIT_FSIZE, makes the OS refuse the
writes as a full disk does): the agent keeps its oldest messages, drops the new ones and counts
them, does not crash, and takes messages again when space returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.durability

SCRIPT = Path(__file__).with_name("outbox_disk_full.py")


def test_a_full_disk_keeps_the_oldest_messages_and_counts_the_dropped(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "600"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    kept = got["kept"]
    assert 0 < len(kept) < 600, "the limit was reached"
    assert kept == list(range(len(kept))), "the oldest messages are kept, in order"
    assert got["refused"] == got["full_dropped"] == 600 - len(kept), "every refused message counted"
    assert got["full_messages"] == len(kept)
    # space returns: confirmed messages are removed and new ones taken, nothing more dropped
    assert got["after_put"] == 0
    removed = 20 if got["removed_while_full"] else 10  # a removal may need space too
    assert got["after_messages"] == len(kept) - removed + 1
    assert got["after_dropped"] == got["full_dropped"]
