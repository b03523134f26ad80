"""Health, metrics and provisioning: the public routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from api import provisioning
from api.deps import ConnDep, remote_of
from api.provisioning import ProvisionRequest, ProvisionResponse

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str
    database: bool
    broker: bool


@router.get("/healthz", response_model=Health)
async def healthz(request: Request, conn: ConnDep, response: Response) -> Any:
    """200 when the database answers (the broker link is reported, commands wait without it)."""
    await conn.execute("SELECT 1")
    link = request.app.state.command_link
    return Health(status="ok", database=True, broker=bool(link and link.connected.is_set()))


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.post("/api/v1/provision", response_model=ProvisionResponse, status_code=201)
async def provision(body: ProvisionRequest, request: Request, conn: ConnDep) -> Any:
    """A controller claims its identity with the code on its label (docs/provisioning.md)."""
    return await provisioning.provision(conn, request.app.state.settings,
                                        request.app.state.device_accounts, body, remote_of(request))
