"""A tenant's API keys for tenant admins: create (the key is shown once), list (never the key), revoke."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import api
from schemas.errors import ApiKeyNotFound, NotFound, NotTenantAdmin, RoleTooHigh
from schemas.users import ApiKey, CreateApiKey, CreatedApiKey
from service.domain.roles import may_grant
from service.identity.api_keys import create_key, key_view, list_keys, revoke_key
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller_may, runtime_of


async def post_key(request: Request) -> Response:
    principal = await caller_may(request, "api_keys.manage")
    cmd = await body_as(request, CreateApiKey)
    if not may_grant(principal.role, cmd.role):
        raise RoleTooHigh(f"a key's role may not exceed your own ({principal.role})", field="role")
    created = await create_key(runtime_of(request).pool, principal.tenant_id, name=cmd.name, role=cmd.role)
    return JSON(created, status_code=201)


async def get_keys(request: Request) -> Response:
    principal = await caller_may(request, "api_keys.manage")
    return JSON([key_view(r) for r in await list_keys(runtime_of(request).pool, principal.tenant_id)])


async def delete_key(request: Request) -> Response:
    principal = await caller_may(request, "api_keys.manage")
    runtime = runtime_of(request)
    key_id = request.path_params["key_id"]
    digest = await revoke_key(runtime.pool, key_id, tenant_id=principal.tenant_id)
    if digest is None:
        raise ApiKeyNotFound("API key not found", field="key_id")
    # The authenticator caches keys by their hash, which is what is stored: this instance stops
    # accepting the key at once, other instances within the auth cache ttl.
    runtime.auth.api_keys.forget(digest)
    return JSON(api.Success())


ENDPOINTS = [
    Endpoint("POST", "/api-keys", post_key, "Create an API key (tenant admins); the key is shown only in this response",
             body=CreateApiKey, response=CreatedApiKey, status=201, errors=(NotTenantAdmin, RoleTooHigh, NotFound),
             links=(Link("DELETE", "/api-keys/{key_id}"),)),
    Endpoint("GET", "/api-keys", get_keys, "The tenant's API keys: prefix, name, role and dates, never the key",
             response=list[ApiKey], errors=(NotTenantAdmin,)),
    Endpoint("DELETE", "/api-keys/{key_id}", delete_key, "Revoke an API key (tenant admins)",
             response=api.Success, errors=(NotTenantAdmin, ApiKeyNotFound)),
]
