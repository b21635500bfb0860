"""The error contract (401, 404, 405, 413 and the error body) and /health, including a database that refuses writes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from schemas.config import Settings
from service.app import create_app
from service.runtime import start_runtime, stop_runtime
from tests.conftest import Tenant, create_database, database_name, error_of, make_tenant

LIMIT = 64 * 1024


def room_body_of_size(size: int) -> bytes:
    """A valid create-room body padded with members to exactly `size` bytes (metadata is capped far lower)."""
    members: list[str] = []
    body = json.dumps({"type": "group", "members": members}).encode()
    while len(body) < size:
        room = size - len(body) - (4 if members else 2)  # an id's quotes, and ", " before all but the first
        # Ids are 5-128 characters (a 4-digit prefix keeps them distinct); leave the last one room enough.
        length = room if room <= 128 else 64 if room - 128 < 9 else 128
        members.append(f"{len(members):04}" + "x" * (length - 4))
        body = json.dumps({"type": "group", "members": members}).encode()
    assert len(body) == size
    return body


async def in_chunks(data: bytes, size: int = 8 * 1024) -> AsyncIterator[bytes]:
    """Stream `data` piece by piece, so the request goes chunked with no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


# --- 401 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-User-Id": "alice"},
        {"X-API-Key": "rl_not-a-real-key", "X-User-Id": "alice"},
        {"X-API-Key": "", "X-User-Id": "alice"},
        {"X-API-Key": "k" * 500, "X-User-Id": "alice"},
    ],
    ids=["missing-key", "wrong-key", "empty-key", "oversized-key"],
)
async def test_request_without_a_valid_api_key_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    error = error_of(await client.get("/rooms", headers=headers), 401)
    assert error["code"] == "AUTHENTICATION_ERROR"
    assert "field" not in error


@pytest.mark.parametrize(
    "user_id", [None, "", "has space", "a/b", "u" * 129], ids=["missing", "empty", "space", "slash", "too-long"]
)
async def test_request_without_a_well_formed_user_id_is_401(
    client: httpx.AsyncClient, tenant: Tenant, user_id: str | None
) -> None:
    headers = {"X-API-Key": tenant.api_key} | ({} if user_id is None else {"X-User-Id": user_id})
    error = error_of(await client.get("/rooms", headers=headers), 401)
    assert error["code"] == "AUTHENTICATION_ERROR"


async def test_user_id_of_128_characters_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/rooms", headers=tenant.as_user("u" * 128))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/rooms"), ("GET", "/rooms/room_x"), ("GET", "/rooms/room_x/messages"),
     ("POST", "/rooms/room_x/messages"), ("DELETE", "/rooms/room_x/members/bob"), ("POST", "/acks")],
)
async def test_authentication_comes_before_body_and_room_checks(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, content=b"{not json", headers={"X-API-Key": "rl_wrong"})
    assert error_of(response, 401)["code"] == "AUTHENTICATION_ERROR"


async def test_revoked_api_key_is_401(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    # A key never used before is not cached, so revoking it first must take effect at once.
    await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1", tenant.tenant_id)
    assert error_of(await client.get("/rooms", headers=tenant.as_user("alice")), 401)["code"] == "AUTHENTICATION_ERROR"


# --- 404 / 405 ----------------------------------------------------------------------------------


async def test_unknown_route_is_404_with_the_error_body(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/no/such/route", headers=tenant.as_user("alice"))
    assert error_of(response, 404)["code"] == "NOT_FOUND"


async def test_unknown_room_is_404_room_not_found_on_room_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get(f"/rooms/room_{uuid.uuid4().hex[:20]}", headers=tenant.as_user("alice"))
    error = error_of(response, 404)
    assert (error["code"], error["field"]) == ("ROOM_NOT_FOUND", "room_id")


async def test_wrong_method_is_405_with_the_error_body(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.put("/rooms", json={}, headers=tenant.as_user("alice"))
    assert error_of(response, 405)["code"] == "METHOD_NOT_ALLOWED"


# --- 413 ----------------------------------------------------------------------------------------


async def test_body_over_the_limit_by_content_length_is_413(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/rooms", content=room_body_of_size(LIMIT + 1),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    assert error_of(response, 413)["code"] == "PAYLOAD_TOO_LARGE"
    assert (await client.get("/rooms", headers=tenant.as_user("alice"))).json() == []


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient, tenant: Tenant) -> None:
    request = client.build_request(
        "POST", "/rooms", content=in_chunks(room_body_of_size(LIMIT + 1)),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert error_of(response, 413)["code"] == "PAYLOAD_TOO_LARGE"
    assert (await client.get("/rooms", headers=tenant.as_user("alice"))).json() == []


async def test_body_of_exactly_the_limit_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/rooms", content=room_body_of_size(LIMIT),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_streamed_body_of_exactly_the_limit_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/rooms", content=in_chunks(room_body_of_size(LIMIT)),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_oversized_body_is_413_even_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/rooms", content=b"x" * (LIMIT + 1))
    assert error_of(response, 413)["code"] == "PAYLOAD_TOO_LARGE"


# --- /health ------------------------------------------------------------------------------------


async def test_health_is_200_ok_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["db_writable"], body["nats_connected"]) == ("ok", True, True)
    assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", body["uptime"])


@dataclass(frozen=True)
class ReadOnlyApp:
    """A second app whose database refuses writes, the database's URL and a tenant created before that."""

    client: httpx.AsyncClient
    database_url: str
    tenant: Tenant


@pytest.fixture(scope="module")
async def read_only(pg_server_url: str, nats_url: str) -> AsyncIterator[ReadOnlyApp]:
    """A Runtime and app on a migrated database set `default_transaction_read_only = on` (dropped afterwards)."""
    url = await create_database(pg_server_url, "roomlog_ro")
    name = database_name(url)
    admin = await asyncpg.connect(pg_server_url)
    try:
        tenant = await make_tenant(url)
        await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        # Signing keys from settings: without them start-up stores a key, which a read-only database refuses.
        settings = Settings(database_url=url, nats_url=nats_url, access_log=False, jwt_keys="ro=" + "k" * 40)
        runtime = await start_runtime(settings)
        try:
            # raise_app_exceptions=False: an unhandled error must show up as the 500 a client would get.
            transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
                yield ReadOnlyApp(c, url, tenant)
        finally:
            await stop_runtime(runtime)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_read_only_database_refuses_writes_but_not_transaction_ids(read_only: ReadOnlyApp) -> None:
    # What the server really does: the setting blocks writes, yet pg_current_xact_id() still succeeds.
    conn = await asyncpg.connect(read_only.database_url)
    try:
        with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ('tn_probe', 'probe')")
        assert await conn.fetchval("SELECT pg_current_xact_id()") is not None
    finally:
        await conn.close()


async def test_health_is_503_when_the_database_refuses_writes(read_only: ReadOnlyApp) -> None:
    response = await read_only.client.get("/health")
    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["status"], body["db_writable"]) == ("degraded", False)


async def test_write_to_a_read_only_database_is_503_service_unavailable(read_only: ReadOnlyApp) -> None:
    response = await read_only.client.post("/rooms", json={"type": "group"}, headers=read_only.tenant.as_user("alice"))
    assert error_of(response, 503)["code"] == "SERVICE_UNAVAILABLE"
