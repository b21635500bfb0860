"""Tenants and their API keys: keys are shown once at creation; only a SHA-256 of each is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from eventstore.types import Connection

KEY_PREFIX = "rlk_"


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    name: str
    api_key: str


def hash_key(api_key: str) -> bytes:
    """The stored form of a key; keys are 256-bit random, so a fast hash is enough (no guessing to slow down)."""
    return hashlib.sha256(api_key.encode()).digest()


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as `room_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(10)}"


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
        await add_api_key(conn, tenant.tenant_id, tenant.api_key, name="created with the tenant")
        # The tenant's first admin, so a backend can act as "admin" (X-User-Id) for tenant administration.
        await conn.execute(
            "INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, $2, $3, 'admin')",
            tenant.tenant_id, admin_user_id, admin_user_id,
        )
    return tenant


def new_api_key() -> str:
    """A fresh 256-bit API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def add_api_key(
    conn: Connection, tenant_id: str, api_key: str, *, name: str = "", role: str = "admin"
) -> str:
    """Store a key's hash for a tenant; returns the key's id (for listing and revoking)."""
    key_id = new_id("key")
    await conn.execute(
        "INSERT INTO api_keys (key_hash, prefix, tenant_id, key_id, name, role) VALUES ($1, $2, $3, $4, $5, $6)",
        hash_key(api_key), api_key[:12], tenant_id, key_id, name, role,
    )
    return key_id
