"""Login, the caller, users, API keys and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field

from api import accounts
from api.deps import Conn, ConnDep, Grid, Scope, remote_of
from api.pagination import decode_cursor, next_cursor
from api.roles import Principal, Role
from api.routes.params import DEFAULT, Cursor, Id, Limit, WordQuery
from wire.messages import Text

router = APIRouter(prefix="/api/v1", tags=["auth"])
grid_router = APIRouter(prefix="/api/v1/grid", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    user_id: int
    tenant: str | None
    role: Role
    key_id: int | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Annotated[Text, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    role: Role
    name: Annotated[Text, Field(max_length=128)] = ""
    password: Annotated[Text, Field(min_length=12, max_length=256)]


class UserOut(BaseModel):
    id: int
    email: str
    role: Role
    name: str
    created_at: datetime
    disabled: bool


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(min_length=1, max_length=128)]
    role: Role
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = 365


class KeyCreated(BaseModel):
    id: int
    prefix: str
    name: str
    role: Role
    key: str = Field(description="the secret, shown this once only")
    created_at: datetime
    expires_at: datetime | None


class KeyOut(BaseModel):
    id: int
    prefix: str
    name: str
    role: Role
    owner: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class AuditEntry(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    key_id: int | None
    action: str
    target: str
    detail: dict[str, Any]
    remote: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


@router.post("/auth/token", response_model=Token)
async def token(request: Request, conn: ConnDep,
                form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    """OAuth2 password flow: a short-lived bearer token for a person."""
    settings = request.app.state.settings
    issued = await accounts.login(conn, settings, form.username[:320], form.password[:1024],
                                  remote_of(request))
    return Token(access_token=issued, expires_in=settings.token_lifetime_s)


async def _renew(request: Request, conn: Conn, principal: Principal) -> Token:
    settings = request.app.state.settings
    presented = request.headers.get("authorization", "").partition(" ")[2].strip()
    issued = await accounts.refresh(conn, settings, presented, principal)
    return Token(access_token=issued, expires_in=settings.token_lifetime_s)


@router.post("/auth/refresh", response_model=Token)
async def refresh(request: Request, conn: ConnDep, scope: Scope) -> Token:
    """A new short-lived token for the bearer of a valid one, while the person's account is
    active and their login younger than the session's maximum (the dashboard renews before
    expiry, so work is not cut off mid-way; a disabled account stops at its next renewal)."""
    return await _renew(request, conn, scope.principal)


@grid_router.post("/auth/refresh", response_model=Token)
async def grid_refresh(request: Request, conn: ConnDep, grid: Grid) -> Token:
    """The grid operator's own renewal, on the same terms: a new short-lived token while its
    account is active and its login younger than the session's maximum. The token it gets is the
    grid operator's again: supply points' energy and settlement, nothing of a tenant."""
    return await _renew(request, conn, grid.principal)


@router.get("/me", response_model=Me)
async def me(scope: Scope) -> Me:
    p = scope.principal
    return Me(user_id=p.user_id, tenant=p.tenant, role=p.role, key_id=p.key_id)


@router.get("/users", response_model=list[UserOut])
async def users(conn: ConnDep, scope: Scope) -> Any:
    return await accounts.list_users(conn, scope)


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, conn: ConnDep, scope: Scope) -> Any:
    return await accounts.create_user(conn, scope, body.email, body.role, body.name, body.password)


@router.delete("/users/{user_id}", status_code=204)
async def disable_user(user_id: Id, conn: ConnDep, scope: Scope) -> Response:
    await accounts.disable_user(conn, scope, user_id)
    return Response(status_code=204)


@router.get("/keys", response_model=list[KeyOut])
async def keys(conn: ConnDep, scope: Scope) -> Any:
    return await accounts.list_keys(conn, scope)


@router.post("/keys", response_model=KeyCreated, status_code=201)
async def create_key(body: KeyIn, conn: ConnDep, scope: Scope) -> Any:
    return await accounts.create_key(conn, scope, body.name, body.role, body.expires_in_days)


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: Id, conn: ConnDep, scope: Scope) -> Response:
    await accounts.revoke_key(conn, scope, key_id)
    return Response(status_code=204)


@router.get("/audit", response_model=AuditPage)
async def audit_log(conn: ConnDep, scope: Scope, cursor: Cursor = None, limit: Limit = DEFAULT,
                    action: WordQuery = None) -> Any:
    before = decode_cursor(cursor, int)
    assert before is None or isinstance(before, int)
    items = await accounts.audit_page(conn, scope, before, limit, action)
    return AuditPage(items=[AuditEntry(**i) for i in items],
                     next_cursor=next_cursor([i["id"] for i in items], limit))
