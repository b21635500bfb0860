"""A tenant's API keys: created (the key is returned once; only its SHA-256 is stored), listed, revoked.

The API routes and the `roomlog key` CLI commands share these queries.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import asyncpg

from eventstore.types import Queryable
from schemas.errors import NotFound
from schemas.roles import TenantRole
from schemas.users import ApiKey, CreatedApiKey
from service.identity.ids import new_id

KEY_PREFIX = "rlk_"


def new_api_key() -> str:
    """A fresh 256-bit API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(api_key: str) -> bytes:
    """The stored form of a key; keys are 256-bit random, so a fast hash is enough (no guessing to slow down)."""
    return hashlib.sha256(api_key.encode()).digest()


# Characters of a key kept for listing: enough to tell keys apart, useless to guess.
PREFIX_CHARS = 12
# Key ids are generated (`key_` + hex); anything else cannot name a key, and must not reach the database.
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_COLUMNS = "key_id, prefix, name, role, created_at, revoked_at"


def key_view(row: asyncpg.Record) -> ApiKey:
    """The API view of an api_keys row (prefix only: the key itself is never stored)."""
    return ApiKey(key_id=row["key_id"], prefix=row["prefix"], name=row["name"], role=row["role"],
                  created_at=row["created_at"], revoked_at=row["revoked_at"])


async def create_key(
    conn: Queryable, tenant_id: str, *, name: str, role: TenantRole, api_key: str | None = None,
    user_id: str | None = None,
) -> CreatedApiKey:
    """A new key of the tenant (`api_key`, or a fresh one; acting only for `user_id` when given); the returned
    `api_key` is the only copy.

    404 when the tenant does not exist.
    """
    api_key, key_id = api_key or new_api_key(), new_id("key")
    try:
        created_at = await conn.fetchval(
            "INSERT INTO api_keys (key_hash, prefix, tenant_id, key_id, name, role, user_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at",
            hash_key(api_key), api_key[:PREFIX_CHARS], tenant_id, key_id, name, role, user_id,
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
    if not _KEY_ID.match(key_id):
        return None
    digest = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE key_id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING key_hash",
        key_id, tenant_id,
    )
    return None if digest is None else bytes(digest)
