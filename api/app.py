"""The app factory: FastAPI with an async connection pool, the command link, one access rule per
route (checked at start), problem+json errors, and metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import IO

from fastapi import Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from api import dashboard_app, open311, opendata, problems, route_index, worker_slot
from api.access import RULES, V1, Registry
from api.clock import ApiClock
from api.command_link import CommandLink
from api.deps import Conn, authorize, connection
from api.metrics import ApiMetrics, MetricsMiddleware
from api.metrics import worker_exited as metrics_exit
from api.provisioning import DeviceAccounts
from api.routes import assets, auth, energy, operations, readings, service
from api.settings import ApiSettings

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """The API cannot start with these settings; the text says which."""


def create_app(settings: ApiSettings, device_accounts: DeviceAccounts | None = None) -> FastAPI:
    """The app; the pool opens and the command link connects when it starts (lifespan)."""
    if settings.dsn is None:
        raise SettingsError("LUCIOLE_API_DSN is not set (the luciole_api role's DSN)")
    dsn = settings.dsn.get_secret_value()
    registry = Registry(RULES)
    metrics = ApiMetrics()
    clock = ApiClock(settings.sim_clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            dsn, min_size=settings.pool_min, max_size=settings.pool_max, open=False,
            name="luciole-api", timeout=settings.pool_timeout_s)
        await pool.open(wait=True, timeout=30)
        link: CommandLink | None = None
        lock: IO[bytes] | None = None
        accounts = settings.broker_accounts()
        if accounts and settings.mqtt_host and settings.mqtt_port:
            account, lock = worker_slot.claim(accounts, settings.run_dir)
            link = CommandLink(settings.mqtt_host, settings.mqtt_port, account.username,
                               account.password.get_secret_value(), clock=clock)
            link.start()
            log.info("api worker broker_account=%s simulated_clock=%s", account.username,
                     settings.sim_clock is not None)
        else:
            log.warning("no broker account: commands are stored but not sent")
        app.state.pool, app.state.command_link = pool, link
        try:
            yield
        finally:
            if link is not None:
                link.stop()
            if lock is not None:
                lock.close()
            await pool.close()
            metrics_exit()

    app = FastAPI(title="Luciole API", version="1.0", lifespan=lifespan,
                  dependencies=[Depends(authorize)],
                  description="Remote control, faults, energy, settlement and provisioning of "
                  "street lighting. Errors are RFC 9457 problem details.")
    problems.install(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router in (service.router, auth.router, auth.grid_router, assets.router, readings.router,
                   operations.router, energy.router, energy.grid_router):
        app.include_router(router)

    # Open data (GeoJSON, FIWARE NGSI-LD) and Open311 are routers of their own, every route
    # public, each declared in one line as it is included.
    for public in (opendata.router(connection), open311.router(connection)):
        app.include_router(registry.public_router(public, prefix=V1), prefix=V1)

    dashboard_app.install(app, settings.tile_url)  # static files at /dashboard, public
    registry.check(app.routes)  # an undeclared route (or a rule for no route) stops here
    route_index.install(app)  # each request tried against the routes its path can match only
    app.state.settings = settings
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.device_accounts = device_accounts
    app.state.command_link = None
    app.state.clock = clock  # now, for commands and schedule pushes (a demo's simulated clock)
    return app
