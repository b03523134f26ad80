"""Who acts: the roles of people and keys, and the principal a request acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    ENERGY_MANAGER = "energy_manager"
    TECHNICIAN = "technician"
    GRID_OPERATOR = "grid_operator"
    VIEWER = "viewer"


TENANT_ROLES = frozenset(r for r in Role if r is not Role.GRID_OPERATOR)
"""Roles a user of a tenant may hold; the grid operator belongs to no tenant."""


@dataclass(frozen=True)
class Principal:
    """The identity behind a request: a person (bearer token) or a machine (API key)."""

    user_id: int
    tenant: str | None  # None: the grid operator
    role: Role
    key_id: int | None = None

    def __post_init__(self) -> None:
        if (self.role is Role.GRID_OPERATOR) != (self.tenant is None):
            raise ValueError("the grid operator, and only it, belongs to no tenant")
