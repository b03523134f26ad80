"""Secrets of people and machines, pure: argon2 password hashes, API keys (prefix + secret,
stored as SHA-256: the secret is 256 random bits, so a slow hash buys nothing), signed bearer
tokens, and the lockout rule."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api.roles import Principal, Role

KEY_SCHEME = "lk"
PREFIX_CHARS = 12
TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "luciole-api"
CLAIM_CODE_BYTES = 12
_HASHER = PasswordHasher()  # argon2id, the library's RFC 9106 defaults
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class CredentialError(ValueError):
    """A key or token that is malformed, forged, expired or not ours."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches; an account without a password (or an unknown one: pass
    None) costs the same time, so timing tells nothing about which emails exist."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class NewKey:
    prefix: str
    secret: str  # shown once, never stored
    key_hash: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_api_key() -> NewKey:
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    full = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix, full, _sha256(full))


def key_prefix(presented: str) -> str:
    """The prefix of a presented key, or CredentialError when it is not shaped like one."""
    parts = presented.split("_", 2)
    if (len(parts) != 3 or parts[0] != KEY_SCHEME or len(parts[1]) != PREFIX_CHARS
            or not all(c in "0123456789abcdef" for c in parts[1]) or not 20 <= len(parts[2]) <= 128):
        raise CredentialError("not a Luciole API key")
    return parts[1]


def key_matches(stored_hash: str, presented: str) -> bool:
    return hmac.compare_digest(stored_hash, _sha256(presented))


def new_claim_code() -> tuple[str, str]:
    """(code printed on the label, its hash for the database)."""
    code = "CLAIM-" + secrets.token_hex(CLAIM_CODE_BYTES).upper()
    return code, claim_code_hash(code)


def claim_code_hash(code: str) -> str:
    return _sha256(code.strip())


def issue_token(principal: Principal, secret: str, lifetime: timedelta, now: datetime,
                auth_time: int | None = None) -> str:
    """A signed bearer token; `auth_time` is when the person typed their password (kept by
    renewals, so a session ends however often it is renewed)."""
    claims = {"sub": str(principal.user_id), "tid": principal.tenant, "role": principal.role.value,
              "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp()),
              "auth_time": int(now.timestamp()) if auth_time is None else auth_time,
              "aud": TOKEN_AUDIENCE, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def read_token(token: str, secret: str, now: datetime) -> Principal:
    """The principal of a valid token; CredentialError when forged, expired or malformed."""
    return read_token_until(token, secret, now)[0]


def read_token_until(token: str, secret: str, now: datetime) -> tuple[Principal, float]:
    """The principal of a valid token and the POSIX time it expires at (`exp`)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE,
                            options={"require": ["sub", "exp", "iat", "aud", "role"],
                                     "verify_iat": False},
                            leeway=0)
    except jwt.ExpiredSignatureError:
        raise CredentialError("the token has expired") from None
    except jwt.PyJWTError:
        raise CredentialError("the token is not valid") from None
    if claims["exp"] <= now.timestamp():
        raise CredentialError("the token has expired")
    try:
        tenant = claims.get("tid")
        return (Principal(int(claims["sub"]), tenant if isinstance(tenant, str) else None,
                          Role(claims["role"])), float(claims["exp"]))
    except (ValueError, TypeError):
        raise CredentialError("the token is not valid") from None


def token_auth_time(token: str, secret: str, now: datetime) -> int:
    """When the session of a valid token began (its `auth_time`, else its `iat`)."""
    read_token_until(token, secret, now)
    claims = jwt.decode(token, secret, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE,
                        options={"verify_iat": False})
    value = claims.get("auth_time", claims["iat"])
    if not isinstance(value, int):
        raise CredentialError("the token is not valid")
    return value


class TokenCache:
    """Principals of tokens already verified, each until its own `exp` and no longer: a token
    needs no database and cannot be revoked before it expires, so a cached principal grants
    exactly what verifying the signature again would (a worker's own dictionary, bounded)."""

    def __init__(self, secret: str, max_entries: int = 10_000) -> None:
        self.secret, self.max_entries = secret, max_entries
        self._known: dict[str, tuple[Principal, float]] = {}

    def read(self, token: str, now: datetime) -> Principal:
        found = self._known.get(token)
        if found is not None:
            if found[1] > now.timestamp():
                return found[0]
            del self._known[token]
        principal, expires = read_token_until(token, self.secret, now)
        if len(self._known) >= self.max_entries:
            self._known.clear()
        self._known[token] = (principal, expires)
        return principal


@dataclass(frozen=True)
class LoginOutcome:
    failed_logins: int
    locked_until: datetime | None


def after_login(ok: bool, failed_logins: int, now: datetime, max_failures: int,
                lockout: timedelta) -> LoginOutcome:
    """The account's counters after an attempt: a success clears them; the max_failures-th
    consecutive failure locks the account for `lockout` and starts counting afresh."""
    if ok:
        return LoginOutcome(0, None)
    failures = failed_logins + 1
    if failures >= max_failures:
        return LoginOutcome(0, now + lockout)
    return LoginOutcome(failures, None)


def is_locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until
