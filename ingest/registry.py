"""Controller registry: (tenant, controller id) -> controllers.key, cached, reloaded on a miss
at most once per `refresh_min_s` so a flood of unknown controllers cannot hammer the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

LOAD = "SELECT tenant_id, id, key FROM controllers"


class Registry:
    """Maps (tenant, controller) to the compact key the hypertables carry.

    A controller that exists under another tenant is not found: the topic's tenant must be the
    controller's tenant (ingest rejects it as `unknown_controller`).
    """

    def __init__(self, refresh_min_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.refresh_min_s = refresh_min_s
        self._clock = clock
        self._keys: dict[tuple[str, str], int] = {}
        self._loaded_at = float("-inf")

    def __len__(self) -> int:
        return len(self._keys)

    def load(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(LOAD).fetchall()
        conn.commit()  # do not leave a transaction open across batches
        self._keys = {(tenant, controller): key for tenant, controller, key in rows}
        self._loaded_at = self._clock()
        log.info("registry loaded controllers=%d", len(self._keys))

    def lookup(self, conn: psycopg.Connection, tenant: str, controller: str) -> int | None:
        """The controller's key, or None when unknown even after an allowed reload."""
        key = self._keys.get((tenant, controller))
        if key is None and self._clock() - self._loaded_at >= self.refresh_min_s:
            self.load(conn)
            key = self._keys.get((tenant, controller))
        return key
