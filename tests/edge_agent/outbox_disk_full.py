"""Fill an outbox past a file size limit (RLIMIT_FSIZE, as a full disk would refuse writes),
then let space return; prints what happened as JSON. Run as a script by test_outbox_disk_full."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from edge_agent.store_forward import Outbox, OutboxFull  # noqa: E402

LIMIT = 256 * 1024


def main(directory: Path, messages: int) -> dict[str, object]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, hard))
    outbox = Outbox(directory / "outbox.sqlite", max_bytes=64 << 20)
    refused = sum(outbox.put("t", i.to_bytes(4, "little") * 250) for i in range(messages))
    full = outbox.stats()
    kept = [int.from_bytes(m.payload[:4], "little") for m in outbox.peek(messages)]
    try:
        outbox.remove([m.id for m in outbox.peek(10)])
        removed_while_full = True
    except OutboxFull:
        removed_while_full = False
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # space returns
    outbox.remove([m.id for m in outbox.peek(10)])
    after_put = outbox.put("t", b"after")
    after = outbox.stats()
    return dict(refused=refused, kept=kept, full_dropped=full.dropped_total, full_messages=full.messages,
                removed_while_full=removed_while_full, after_put=after_put,
                after_messages=after.messages, after_dropped=after.dropped_total)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]))))
