"""Tenant settings for the platform admin: read and change a tenant's rate limits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import NotPlatformAdmin, TenantNotFound
from schemas.tenants import TenantSettings, UpdateTenantSettings
from service.identity.tenants import tenant_settings, update_tenant_settings
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller_may, runtime_of


async def get_tenant(request: Request) -> Response:
    await caller_may(request, "tenant.settings")
    return JSON(await tenant_settings(runtime_of(request).pool, request.path_params["tenant_id"]))


async def update_tenant(request: Request) -> Response:
    await caller_may(request, "tenant.settings")
    change = await body_as(request, UpdateTenantSettings)
    tenant_id = request.path_params["tenant_id"]
    runtime = runtime_of(request)
    settings = await update_tenant_settings(runtime.pool, tenant_id, change)
    # This instance applies the new limits at once; the others when their cached copy expires.
    runtime.limiter.forget(tenant_id)
    return JSON(settings)


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/admin/tenants/{tenant_id}", get_tenant, "A tenant's settings (platform admin only)",
             response=TenantSettings, errors=(TenantNotFound, NotPlatformAdmin)),
    Endpoint("PATCH", "/admin/tenants/{tenant_id}", update_tenant,
             "Change a tenant's rate limits: 0 = unlimited, null = the default (platform admin only)",
             body=UpdateTenantSettings, response=TenantSettings, errors=(TenantNotFound, NotPlatformAdmin)),
]
