"""What reaches every route through Depends: the pooled connection, the principal, and the access
the route's rule grants (tenant scope as ONE dependency, the grid operator's as another)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.access import Audience, Registry, Rule, route_template
from api.credentials import CredentialError, TokenCache, key_matches, key_prefix
from api.problems import Problem
from api.roles import Principal, Role
from api.settings import ApiSettings

Conn = AsyncConnection[Any]

KEY_LOOKUP = """
SELECT k.id, k.key_hash, k.role, k.expires_at, k.revoked_at, u.id, u.tenant_id, u.disabled_at
FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = %s
"""


def _pool(request: Request) -> AsyncConnectionPool[Conn]:
    pool: AsyncConnectionPool[Conn] = request.app.state.pool
    return pool


READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def connection(request: Request) -> AsyncIterator[Conn]:
    """One pooled connection per request. A request that may write (POST, PUT, PATCH, DELETE)
    runs in one transaction: committed when the route returns, rolled back when it raises (so a
    refused request writes nothing). A GET or HEAD only reads, so its connection is in autocommit:
    no BEGIN and COMMIT round trips around its queries (each statement sees its own snapshot).
    The mode is set at every checkout, so a connection never carries it to the next request."""
    async with _pool(request).connection() as conn:
        await conn.set_autocommit(request.method in READ_ONLY_METHODS)
        yield conn


#: ends with the route ("function" scope), before the reply is sent: a write is committed before
#: its client reads the answer (the default "request" scope commits after the reply has left, so
#: a read right after a POST could see the row as it was)
ConnDep = Annotated[Conn, Depends(connection, scope="function")]
#: for a streamed reply, whose body reads from the connection after the route has returned: held
#: until the reply has been sent (a GET's connection, in autocommit: nothing to commit)
StreamConnDep = Annotated[Conn, Depends(connection, scope="request")]


def remote_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="luciole"'})


async def principal_of(request: Request) -> Principal:
    """The identity a request presents: `Authorization: Bearer <token or key>` or `X-API-Key`."""
    settings: ApiSettings = request.app.state.settings
    header = request.headers.get("authorization", "")
    presented = request.headers.get("x-api-key", "")
    if not presented:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("send a bearer token or an API key")
        presented = value.strip()
    now = datetime.now(UTC)
    if presented.startswith("lk_"):
        try:
            prefix = key_prefix(presented)
        except CredentialError as exc:
            raise _unauthorized(str(exc)) from None
        async with _pool(request).connection() as conn:
            row = await (await conn.execute(KEY_LOOKUP, (prefix,))).fetchone()
        if row is None or not key_matches(row[1], presented):
            raise _unauthorized("unknown API key")
        key_id, _, role, expires_at, revoked_at, user_id, tenant, disabled_at = row
        if revoked_at is not None:
            raise _unauthorized("this API key was revoked")
        if expires_at is not None and expires_at <= now:
            raise _unauthorized("this API key has expired")
        if disabled_at is not None:
            raise _unauthorized("the key's owner is disabled")
        return Principal(user_id, tenant, Role(role), key_id)
    if settings.token_secret is None:
        raise _unauthorized("this server issues no tokens; use an API key")
    secret = settings.token_secret.get_secret_value()
    tokens: TokenCache | None = getattr(request.app.state, "tokens", None)
    if tokens is None or tokens.secret != secret:
        tokens = request.app.state.tokens = TokenCache(secret)
    try:
        return tokens.read(presented, now)
    except CredentialError as exc:
        raise _unauthorized(str(exc)) from None


@dataclass(frozen=True)
class Access:
    """What the route's rule granted this request."""

    rule: Rule
    principal: Principal | None
    remote: str


async def authorize(request: Request) -> Access:
    """Applied to every route of the app: the route's rule decides; undeclared routes never get
    here (the app does not start with one). Tokens need no database; a key is looked up on a
    pooled connection of its own, so public routes (metrics) never wait for the database."""
    registry: Registry = request.app.state.registry
    path = route_template(request.scope)
    rule = registry.rule(request.method, path) if path is not None else None
    if rule is None:  # not reachable for declared apps; refuse rather than guess
        raise Problem(403, "this route has no access rule")
    remote = remote_of(request)
    if rule.audience is Audience.PUBLIC:
        return Access(rule, None, remote)
    principal = await principal_of(request)
    if principal.role not in rule.roles:
        raise Problem(403, f"the {principal.role.value} role may not do this")
    request.state.principal = principal
    return Access(rule, principal, remote)


AccessDep = Annotated[Access, Depends(authorize)]


@dataclass(frozen=True)
class TenantScope:
    """A tenant's user or key: every tenant query takes this and binds `tenant` itself."""

    tenant: str
    principal: Principal
    remote: str

    @property
    def user_id(self) -> int:
        return self.principal.user_id


async def tenant_scope(access: AccessDep) -> TenantScope:
    """async: a plain function would be run in the thread pool, a thread hop per request."""
    principal = access.principal
    if access.rule.audience is not Audience.TENANT or principal is None or principal.tenant is None:
        raise Problem(403, "this route is not tenant-scoped")
    return TenantScope(principal.tenant, principal, access.remote)


@dataclass(frozen=True)
class GridScope:
    """The grid operator: supply points of every tenant, energy and settlement only."""

    principal: Principal
    remote: str


async def grid_scope(access: AccessDep) -> GridScope:
    if access.rule.audience is not Audience.GRID or access.principal is None:
        raise Problem(403, "this route is the grid operator's")
    return GridScope(access.principal, access.remote)


Scope = Annotated[TenantScope, Depends(tenant_scope)]
Grid = Annotated[GridScope, Depends(grid_scope)]
