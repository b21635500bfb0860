"""API keys over HTTP: tenant admins create (shown once), list (never the key), and revoke them."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Tenant, error_of


async def create_key(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """Create a key as the tenant's admin (fails the test unless 201)."""
    fields.setdefault("name", "backend")
    response = await client.post("/api-keys", json=fields, headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


def as_user(api_key: str, user_id: str) -> dict[str, str]:
    """Headers for a backend using `api_key` on behalf of `user_id`."""
    return {"X-API-Key": api_key, "X-User-Id": user_id}


async def listed_keys(client: httpx.AsyncClient, tenant: Tenant) -> list[dict[str, Any]]:
    """GET /api-keys as the tenant admin (fails the test unless 200)."""
    response = await client.get("/api-keys", headers=tenant.as_user("admin"))
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()
    return keys


# --- POST /api-keys -----------------------------------------------------------------------------


async def test_create_key_returns_201_with_the_key_its_prefix_and_role(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await create_key(client, tenant, name="billing", role="agent")
    assert key["key_id"].startswith("key_")
    assert key["api_key"].startswith("rlk_") and len(key["api_key"]) > 40
    assert key["prefix"] == key["api_key"][:12]
    assert (key["name"], key["role"]) == ("billing", "agent")


async def test_create_key_defaults_to_the_admin_role(client: httpx.AsyncClient, tenant: Tenant) -> None:
    assert (await create_key(client, tenant))["role"] == "admin"


async def test_a_created_key_authenticates_for_the_tenant(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await create_key(client, tenant)
    response = await client.get("/rooms", headers=as_user(key["api_key"], "alice"))
    assert response.status_code == 200, response.text


async def test_a_keys_role_caps_the_role_of_the_user_it_acts_for(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await create_key(client, tenant, role="member")
    response = await client.get("/api-keys", headers=as_user(key["api_key"], "admin"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


async def test_the_key_is_stored_only_as_a_hash(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    key = await create_key(client, tenant)
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key["key_id"])
    assert row is not None
    assert key["api_key"] not in [v for v in row.values() if isinstance(v, str)]


async def test_create_key_as_a_member_is_403_not_tenant_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/api-keys", json={"name": "x"}, headers=tenant.as_user("alice"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


async def test_create_key_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/api-keys", json={"name": "x"})
    assert error_of(response, 401)["code"] == "AUTHENTICATION_ERROR"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": "x", "role": "platform"}, "role"),
    ({"name": "x", "scopes": []}, "scopes"),
])
async def test_create_key_with_an_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api-keys", json=body, headers=tenant.as_user("admin"))
    assert error_of(response, 400)["field"] == field


# --- GET /api-keys ------------------------------------------------------------------------------


async def test_list_keys_shows_prefix_name_role_and_dates_but_never_the_key(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await create_key(client, tenant, name="ops", role="agent")
    response = await client.get("/api-keys", headers=tenant.as_user("admin"))
    assert key["api_key"] not in response.text
    listed = next(k for k in response.json() if k["key_id"] == key["key_id"])
    assert listed == {"key_id": key["key_id"], "prefix": key["prefix"], "name": "ops", "role": "agent",
                      "created_at": key["created_at"], "revoked_at": None}


async def test_list_keys_includes_the_key_the_tenant_was_created_with(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    keys = await listed_keys(client, tenant)
    assert [k["prefix"] for k in keys] == [tenant.api_key[:12]]


async def test_list_keys_as_a_member_is_403(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/api-keys", headers=tenant.as_user("alice"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"


# --- DELETE /api-keys/{key_id} ------------------------------------------------------------------


async def test_a_revoked_key_stops_working_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await create_key(client, tenant)
    # Use it first, so the authenticator has it cached: revoking must drop the cached answer.
    assert (await client.get("/rooms", headers=as_user(key["api_key"], "alice"))).status_code == 200
    response = await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("admin"))
    assert response.json() == {"success": True}
    assert error_of(await client.get("/rooms", headers=as_user(key["api_key"], "alice")), 401)["message"] == (
        "Invalid API key"
    )


async def test_a_revoked_key_is_listed_with_its_revocation_time(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await create_key(client, tenant)
    await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("admin"))
    listed = next(k for k in await listed_keys(client, tenant) if k["key_id"] == key["key_id"])
    assert listed["revoked_at"] is not None and listed["revoked_at"] >= listed["created_at"]


async def test_revoking_twice_is_200_and_keeps_the_first_revocation_time(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await create_key(client, tenant)
    await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("admin"))
    first = next(k for k in await listed_keys(client, tenant) if k["key_id"] == key["key_id"])["revoked_at"]
    response = await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("admin"))
    assert response.status_code == 200, response.text
    again = next(k for k in await listed_keys(client, tenant) if k["key_id"] == key["key_id"])["revoked_at"]
    assert again == first


async def test_revoking_one_key_leaves_the_others_working(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = await create_key(client, tenant)
    await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("admin"))
    assert (await client.get("/rooms", headers=tenant.as_user("alice"))).status_code == 200


async def test_revoking_an_unknown_key_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.delete("/api-keys/key_nope", headers=tenant.as_user("admin"))
    assert error_of(response, 404)["code"] == "API_KEY_NOT_FOUND"


async def test_revoking_as_a_member_is_403_and_the_key_keeps_working(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    key = await create_key(client, tenant)
    response = await client.delete(f"/api-keys/{key['key_id']}", headers=tenant.as_user("alice"))
    assert error_of(response, 403)["code"] == "NOT_TENANT_ADMIN"
    assert (await client.get("/rooms", headers=as_user(key["api_key"], "alice"))).status_code == 200


async def test_revoking_a_key_id_with_a_nul_character_is_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.delete("/api-keys/key_%00", headers=tenant.as_user("admin"))
    assert error_of(response, 404)["code"] == "API_KEY_NOT_FOUND"


async def test_a_key_name_with_a_nul_character_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/api-keys", json={"name": "a\u0000b"}, headers=tenant.as_user("admin"))
    assert error_of(response, 400)["field"] == "name"


# --- tenant isolation ---------------------------------------------------------------------------


async def test_another_tenant_never_lists_this_tenants_keys(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    key = await create_key(client, tenant)
    listed = await listed_keys(client, other_tenant)
    assert key["key_id"] not in [k["key_id"] for k in listed]
    assert [k["prefix"] for k in listed] == [other_tenant.api_key[:12]]


async def test_revoking_another_tenants_key_is_404_like_an_unknown_one_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    key = await create_key(client, tenant)
    response = await client.delete(f"/api-keys/{key['key_id']}", headers=other_tenant.as_user("admin"))
    assert error_of(response, 404) == error_of(
        await client.delete("/api-keys/key_nope", headers=other_tenant.as_user("admin")), 404
    )
    assert (await client.get("/rooms", headers=as_user(key["api_key"], "alice"))).status_code == 200


async def test_a_key_created_by_another_tenant_acts_only_in_that_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    room = (await client.post("/rooms", json={"type": "group", "members": []}, headers=tenant.as_user("alice"))).json()
    key = await create_key(client, other_tenant)
    response = await client.get(f"/rooms/{room['room_id']}", headers=as_user(key["api_key"], "alice"))
    assert error_of(response, 404)["code"] == "ROOM_NOT_FOUND"
