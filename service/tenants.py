"""Tenants and their API keys: keys are shown once at creation; only a SHA-256 of each is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

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


async def create_tenant(conn: asyncpg.Connection, name: str) -> NewTenant:
    """Create a tenant with one API key; the returned key is the only copy."""
    tenant = NewTenant(tenant_id=new_id("tn"), name=name, api_key=KEY_PREFIX + secrets.token_urlsafe(32))
    async with conn.transaction():
        await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", tenant.tenant_id, name)
        await add_api_key(conn, tenant.tenant_id, tenant.api_key)
    return tenant


async def add_api_key(conn: asyncpg.Connection, tenant_id: str, api_key: str) -> None:
    """Store a key's hash for a tenant."""
    await conn.execute(
        "INSERT INTO api_keys (key_hash, prefix, tenant_id) VALUES ($1, $2, $3)",
        hash_key(api_key), api_key[:12], tenant_id,
    )
