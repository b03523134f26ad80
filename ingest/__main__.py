"""`python -m ingest`: one ingest worker, configured by LUCIOLE_INGEST_* (see ingest.settings)."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError

from ingest.service import MissingEndpoint, run
from ingest.settings import IngestSettings


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = IngestSettings()
    except ValidationError as exc:
        sys.stderr.write(f"invalid ingest settings:\n{exc}\n")
        return 2
    try:
        run(settings)
    except MissingEndpoint as exc:
        sys.stderr.write(f"invalid ingest settings: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
