"""Per-tenant media limits for the platform admin: the largest file, allowed content types, the storage quota."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import NotPlatformAdmin, TenantNotFound
from schemas.media import MediaLimitsView, SetMediaLimits
from service.commands import media_limits as commands
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller_may, runtime_of


async def get_limits(request: Request) -> Response:
    principal = await caller_may(request, "tenant.settings")
    return JSON(await commands.limits_view(runtime_of(request), principal, request.path_params["tenant_id"]))


async def put_limits(request: Request) -> Response:
    principal = await caller_may(request, "tenant.settings")
    cmd = await body_as(request, SetMediaLimits)
    return JSON(await commands.set_limits(runtime_of(request), principal, request.path_params["tenant_id"], cmd))


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/admin/tenants/{tenant_id}/media-limits", get_limits,
             "The media limits that apply to a tenant's uploads, and which are its own (platform admin only)",
             response=MediaLimitsView, errors=(TenantNotFound, NotPlatformAdmin)),
    Endpoint("PUT", "/admin/tenants/{tenant_id}/media-limits", put_limits,
             "Set a tenant's own media limits; a field left out or null follows the service's default"
             " (platform admin only)",
             body=SetMediaLimits, response=MediaLimitsView, errors=(TenantNotFound, NotPlatformAdmin)),
]
