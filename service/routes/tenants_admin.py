"""Tenant settings for the platform admin: read and change a tenant's rate limits."""

from __future__ import annotations

import asyncpg
from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from schemas.tenants import TenantNotFound, TenantSettings, UpdateTenantSettings
from service.authorization import NotPlatformAdmin
from service.endpoints import Endpoint
from service.http import JSON, body_as, caller_may, runtime_of

_COLUMNS = "tenant_id, name, rate_limit, send_rate_limit, created_at"
# A flag per column says whether the PATCH body set it, so null ("the default") stays distinct from absent.
_UPDATE = f"""
UPDATE tenants SET
    rate_limit = CASE WHEN $2 THEN $3::integer ELSE rate_limit END,
    send_rate_limit = CASE WHEN $4 THEN $5::integer ELSE send_rate_limit END
WHERE tenant_id = $1
RETURNING {_COLUMNS}
"""


async def get_tenant(request: Request) -> Response:
    await caller_may(request, "tenant.settings")
    row = await runtime_of(request).pool.fetchrow(
        f"SELECT {_COLUMNS} FROM tenants WHERE tenant_id = $1", request.path_params["tenant_id"]
    )
    return JSON(_settings(row))


async def update_tenant(request: Request) -> Response:
    await caller_may(request, "tenant.settings")
    change = await body_as(request, UpdateTenantSettings)
    tenant_id = request.path_params["tenant_id"]
    runtime = runtime_of(request)
    row = await runtime.pool.fetchrow(
        _UPDATE, tenant_id,
        change.rate_limit is not UNSET, None if change.rate_limit is UNSET else change.rate_limit,
        change.send_rate_limit is not UNSET, None if change.send_rate_limit is UNSET else change.send_rate_limit,
    )
    # This instance applies the new limits at once; the others when their cached copy expires.
    runtime.limiter.forget(tenant_id)
    return JSON(_settings(row))


def _settings(row: asyncpg.Record | None) -> TenantSettings:
    if row is None:
        raise TenantNotFound("tenant not found", field="tenant_id")
    return TenantSettings(
        tenant_id=row["tenant_id"], name=row["name"], rate_limit=row["rate_limit"],
        send_rate_limit=row["send_rate_limit"], created_at=row["created_at"],
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/admin/tenants/{tenant_id}", get_tenant, "A tenant's settings (platform admin only)",
             response=TenantSettings, errors=(TenantNotFound, NotPlatformAdmin)),
    Endpoint("PATCH", "/admin/tenants/{tenant_id}", update_tenant,
             "Change a tenant's rate limits: 0 = unlimited, null = the default (platform admin only)",
             body=UpdateTenantSettings, response=TenantSettings, errors=(TenantNotFound, NotPlatformAdmin)),
]
