"""Rules between roles: who may hand out which role, and which of two roles a caller acts with."""

from __future__ import annotations

from schemas.roles import RANK, Role, TenantRole


def may_grant(granter_role: Role, role: Role) -> bool:
    """Whether a caller with `granter_role` may hand out `role` (to a user or an API key): never above their own."""
    return RANK[role] <= RANK[granter_role]


def lesser_role(a: TenantRole, b: TenantRole) -> TenantRole:
    """The less powerful of two tenant roles (an API key caps the role of the user it acts for)."""
    return a if RANK[a] <= RANK[b] else b
