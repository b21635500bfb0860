"""Who is calling: a tenant API key (`X-API-Key`) plus the acting user (`X-User-Id`)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import asyncpg
from starlette.datastructures import Headers

from schemas.errors import AuthenticationError
from service.tenants import hash_key

_USER_ID = re.compile(r"^[^\s/]{1,128}$")
# A revoked key stops working within this many seconds on every instance.
KEY_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    user_id: str


class ApiKeyCache:
    """Resolves API keys to tenants, caching answers (also misses) briefly so auth costs no query per request."""

    def __init__(self, pool: asyncpg.Pool, *, ttl: float = KEY_CACHE_SECONDS) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: dict[bytes, tuple[str | None, float]] = {}

    async def tenant_for(self, api_key: str) -> str | None:
        """The tenant the key belongs to, or None for an unknown or revoked key."""
        digest = hash_key(api_key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant_id = await self._pool.fetchval(
            "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", digest
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (tenant_id, now + self._ttl)
        return tenant_id


async def authenticate(headers: Headers, keys: ApiKeyCache) -> Principal:
    """The principal behind the request headers; raises AuthenticationError (401)."""
    api_key = headers.get("x-api-key")
    user_id = headers.get("x-user-id")
    if not api_key:
        raise AuthenticationError("missing X-API-Key header")
    if len(api_key) > 200 or (tenant_id := await keys.tenant_for(api_key)) is None:
        raise AuthenticationError("Invalid API key")
    if not user_id or not _USER_ID.match(user_id):
        raise AuthenticationError("missing or malformed X-User-Id header (1-128 characters, no spaces or '/')")
    return Principal(tenant_id=tenant_id, user_id=user_id)
