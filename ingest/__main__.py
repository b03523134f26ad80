"""`python -m ingest`: one ingest worker, configured by LUCIOLE_INGEST_* (see ingest.settings)."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from ingest.service import run
from ingest.settings import IngestSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        print(f"invalid ingest settings:\n{exc}", file=sys.stderr)
        return 2
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
