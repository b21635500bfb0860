"""Roles: a tenant role per user (capped by the API key's own role), a room role per member, and their order."""

from __future__ import annotations

from typing import Literal, TypeGuard, get_args

# A customer (of the support desk) ranks below a member: it may only use its own support sessions.
# A bot (service/domain/bots.py) ranks below a member too: it acts only in rooms it is a member of.
TenantRole = Literal["customer", "bot", "member", "agent", "admin"]
# A caller's role: a tenant role, or the platform admin's (which belongs to no tenant).
Role = Literal["customer", "bot", "member", "agent", "admin", "platform"]
RoomRole = Literal["member", "admin"]

TENANT_ROLES: tuple[TenantRole, ...] = get_args(TenantRole)
ROOM_ROLES: tuple[RoomRole, ...] = get_args(RoomRole)
# Each role may do what the ones before it may: the order behind "never grant above your own".
RANK: dict[Role, int] = {"customer": -1, "bot": -1, "member": 0, "agent": 1, "admin": 2, "platform": 3}


def is_tenant_role(value: object) -> TypeGuard[TenantRole]:
    """Whether `value` names a tenant role."""
    return value in TENANT_ROLES
