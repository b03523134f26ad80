"""`python -m ingest`, except that the worker SIGKILLs itself right after its first committed
batch: the rows are in the database, but neither a receipt nor the broker's
acknowledgement has gone out. Run as a script by the ingest crash test."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository

from ingest import writer  # noqa: E402
from ingest.__main__ import main  # noqa: E402

_write = writer.Writer.write


def _write_then_die(self: writer.Writer, *args: object, **kwargs: object) -> writer.WriteResult:
    result = _write(self, *args, **kwargs)  # type: ignore[arg-type]
    if result.messages:
        os.kill(os.getpid(), signal.SIGKILL)
    return result


writer.Writer.write = _write_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
