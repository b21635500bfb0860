"""Tenants: created with a first admin API key (shown once) and a first admin user; their settings."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from msgspec import UNSET

from eventstore.types import Queryable
from schemas.errors import TenantNotFound
from schemas.tenants import TenantSettings, UpdateTenantSettings
from service.identity.api_keys import create_key, new_api_key
from service.identity.ids import new_id


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    name: str
    api_key: str


async def create_tenant(
    conn: asyncpg.Connection,
    name: str,
    *,
    rate_limit: int | None = None,
    send_rate_limit: int | None = None,
    admin_user_id: str = "admin",
) -> NewTenant:
    """Create a tenant with one admin API key; the returned key is the only copy."""
    tenant = NewTenant(tenant_id=new_id("tn"), name=name, api_key=new_api_key())
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO tenants (tenant_id, name, rate_limit, send_rate_limit) VALUES ($1, $2, $3, $4)",
            tenant.tenant_id, name, rate_limit, send_rate_limit,
        )
        await create_key(conn, tenant.tenant_id, api_key=tenant.api_key, name="created with the tenant", role="admin")
        # The tenant's first admin, so a backend can act as "admin" (X-User-Id) for tenant administration.
        await conn.execute(
            "INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, $2, $3, 'admin')",
            tenant.tenant_id, admin_user_id, admin_user_id,
        )
    return tenant


_COLUMNS = "tenant_id, name, rate_limit, send_rate_limit, created_at"
# A flag per column says whether the PATCH body set it, so null ("the default") stays distinct from absent.
_UPDATE = f"""
UPDATE tenants SET
    rate_limit = CASE WHEN $2 THEN $3::integer ELSE rate_limit END,
    send_rate_limit = CASE WHEN $4 THEN $5::integer ELSE send_rate_limit END
WHERE tenant_id = $1
RETURNING {_COLUMNS}
"""


async def tenant_exists(conn: Queryable, tenant_id: str) -> bool:
    """Whether the tenant exists."""
    return await conn.fetchval("SELECT 1 FROM tenants WHERE tenant_id = $1", tenant_id) is not None


async def tenant_settings(conn: Queryable, tenant_id: str) -> TenantSettings:
    """A tenant's settings; TenantNotFound when there is no such tenant."""
    return _settings(await conn.fetchrow(f"SELECT {_COLUMNS} FROM tenants WHERE tenant_id = $1", tenant_id))


async def update_tenant_settings(conn: Queryable, tenant_id: str, change: UpdateTenantSettings) -> TenantSettings:
    """Apply the fields `change` sets (null: back to the default); the settings after it."""
    return _settings(await conn.fetchrow(
        _UPDATE, tenant_id,
        change.rate_limit is not UNSET, None if change.rate_limit is UNSET else change.rate_limit,
        change.send_rate_limit is not UNSET, None if change.send_rate_limit is UNSET else change.send_rate_limit,
    ))


def _settings(row: asyncpg.Record | None) -> TenantSettings:
    if row is None:
        raise TenantNotFound("tenant not found", field="tenant_id")
    return TenantSettings(
        tenant_id=row["tenant_id"], name=row["name"], rate_limit=row["rate_limit"],
        send_rate_limit=row["send_rate_limit"], created_at=row["created_at"],
    )
