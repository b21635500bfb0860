"""A tenant's API keys for tenant admins: create (the key is shown once), list (never the key), revoke.

The queries are public so the `roomlog key` CLI commands share them.
"""

from __future__ import annotations

import re

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from eventstore.types import Queryable
from schemas import api
from schemas.errors import NotFound
from schemas.users import ApiKey, ApiKeyNotFound, CreateApiKey, CreatedApiKey, RoleTooHigh, TenantRole
from service.authorization import NotTenantAdmin
from service.endpoints import Endpoint, Link
from service.http import JSON, body_as, caller_may, runtime_of
from service.tenants import hash_key, new_api_key, new_id
from service.users import may_grant

# As many characters as service.tenants.add_api_key keeps: enough to tell keys apart, useless to guess.
PREFIX_CHARS = 12
# Key ids are generated (`key_` + hex); anything else cannot name a key, and must not reach the database.
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_COLUMNS = "key_id, prefix, name, role, created_at, revoked_at"


def key_view(row: asyncpg.Record) -> ApiKey:
    """The API view of an api_keys row (prefix only: the key itself is never stored)."""
    return ApiKey(key_id=row["key_id"], prefix=row["prefix"], name=row["name"], role=row["role"],
                  created_at=row["created_at"], revoked_at=row["revoked_at"])


async def create_key(conn: Queryable, tenant_id: str, *, name: str, role: TenantRole) -> CreatedApiKey:
    """A new key of the tenant; the returned `api_key` is the only copy. 404 when the tenant does not exist."""
    api_key, key_id = new_api_key(), new_id("key")
    try:
        created_at = await conn.fetchval(
            "INSERT INTO api_keys (key_hash, prefix, tenant_id, key_id, name, role)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
            hash_key(api_key), api_key[:PREFIX_CHARS], tenant_id, key_id, name, role,
        )
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("tenant not found") from None
    return CreatedApiKey(key_id=key_id, api_key=api_key, prefix=api_key[:PREFIX_CHARS], name=name, role=role,
                         created_at=created_at)


async def list_keys(conn: Queryable, tenant_id: str) -> list[asyncpg.Record]:
    """The tenant's keys, revoked ones included, oldest first."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, key_id", tenant_id
    )


async def revoke_key(conn: Queryable, key_id: str, *, tenant_id: str | None) -> bytes | None:
    """Revoke a key (of `tenant_id`, when given); its hash, or None when there is no such key. Idempotent."""
    digest = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE key_id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING key_hash",
        key_id, tenant_id,
    )
    return None if digest is None else bytes(digest)


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
    digest = None if not _KEY_ID.match(key_id) else await revoke_key(runtime.pool, key_id,
                                                                        tenant_id=principal.tenant_id)
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
