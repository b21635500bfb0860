"""Tenants never see each other: another tenant's room answers exactly like a room that does not exist."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Tenant

# Every route that takes a room id, with a body that would be valid if the room were the caller's.
ROOM_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/rooms/{room_id}", None),
    ("PATCH", "/rooms/{room_id}", {"name": "taken over"}),
    ("GET", "/rooms/{room_id}/members", None),
    ("POST", "/rooms/{room_id}/members", {"user_ids": ["mallory"]}),
    ("DELETE", "/rooms/{room_id}/members/bob", None),
    ("DELETE", "/rooms/{room_id}/members/alice", None),
    ("POST", "/rooms/{room_id}/messages", {"content": "hello from elsewhere"}),
    ("POST", "/rooms/{room_id}/messages", {"content": "retry", "client_msg_id": "c-1"}),
    ("GET", "/rooms/{room_id}/messages", None),
    ("GET", "/rooms/{room_id}/events", None),
]
ROUTE_IDS = [f"{m} {p}" + (" +client_msg_id" if b and "client_msg_id" in b else "") for m, p, b in ROOM_ROUTES]
NO_SUCH_ROOM = "room_00000000000000000000"


async def room_of(client: httpx.AsyncClient, tenant: Tenant, *, type_: str = "group") -> dict[str, Any]:
    """A room of alice (admin) and bob in `tenant` holding one message with client_msg_id c-1."""
    created = await client.post("/rooms", json={"type": type_, "members": ["bob"]}, headers=tenant.as_user("alice"))
    assert created.status_code == 201, created.text
    room: dict[str, Any] = created.json()
    sent = await client.post(f"/rooms/{room['room_id']}/messages", json={"content": "secret", "client_msg_id": "c-1"},
                             headers=tenant.as_user("alice"))
    assert sent.status_code == 201, sent.text
    room["last_seq"] = sent.json()["seq"]
    return room


async def call(
    client: httpx.AsyncClient, tenant: Tenant, user: str, route: tuple[str, str, dict[str, Any] | None], room_id: str
) -> httpx.Response:
    """Call one of ROOM_ROUTES on `room_id` as `user` of `tenant`."""
    method, path, body = route
    return await client.request(method, path.format(room_id=room_id), json=body, headers=tenant.as_user(user))


async def snapshot(pool: asyncpg.Pool, room_id: str) -> tuple[int, int, list[tuple[str, str, bool]]]:
    """What the database holds for a room: last_seq, event count and membership rows."""
    last_seq = await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", room_id)
    count = await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", room_id)
    members = await pool.fetch("SELECT user_id, role, active FROM members WHERE room_id = $1 ORDER BY user_id", room_id)
    return last_seq, count, [(m["user_id"], m["role"], m["active"]) for m in members]


@pytest.mark.parametrize("route", ROOM_ROUTES, ids=ROUTE_IDS)
async def test_other_tenants_room_is_404_exactly_like_a_missing_room(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, route: tuple[str, str, dict[str, Any] | None]
) -> None:
    room = await room_of(client, tenant)
    foreign = await call(client, other_tenant, "mallory", route, room["room_id"])
    missing = await call(client, other_tenant, "mallory", route, NO_SUCH_ROOM)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "ROOM_NOT_FOUND"
    assert (foreign.status_code, foreign.json()) == (missing.status_code, missing.json())


@pytest.mark.parametrize("route", ROOM_ROUTES, ids=ROUTE_IDS)
async def test_same_user_id_under_another_tenant_gets_404_for_the_room(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, route: tuple[str, str, dict[str, Any] | None]
) -> None:
    room = await room_of(client, tenant)
    foreign = await call(client, other_tenant, "alice", route, room["room_id"])
    missing = await call(client, other_tenant, "alice", route, NO_SUCH_ROOM)
    assert foreign.status_code == 404
    assert foreign.json() == missing.json()


@pytest.mark.parametrize("route", ROOM_ROUTES, ids=ROUTE_IDS)
async def test_other_tenants_calls_change_nothing_in_the_room(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, pool: asyncpg.Pool,
    route: tuple[str, str, dict[str, Any] | None],
) -> None:
    room = await room_of(client, tenant)
    before = await snapshot(pool, room["room_id"])
    await call(client, other_tenant, "alice", route, room["room_id"])
    assert await snapshot(pool, room["room_id"]) == before


async def test_same_user_id_under_another_tenant_lists_no_rooms(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await room_of(client, tenant)
    assert len((await client.get("/rooms", headers=tenant.as_user("alice"))).json()) == 1
    response = await client.get("/rooms", headers=other_tenant.as_user("alice"))
    assert response.status_code == 200
    assert response.json() == []


async def test_ack_to_other_tenants_room_is_404_exactly_like_a_missing_room(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room = await room_of(client, tenant)
    headers = other_tenant.as_user("alice")
    foreign = await client.post("/acks", json={"room_id": room["room_id"], "seq": 1}, headers=headers)
    missing = await client.post("/acks", json={"room_id": NO_SUCH_ROOM, "seq": 1}, headers=headers)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "ROOM_NOT_FOUND"
    assert foreign.json() == missing.json()
    stream = f"user:{other_tenant.tenant_id}:alice"
    assert await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream) == 0


async def test_ack_beyond_last_seq_of_other_tenants_room_is_still_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    room = await room_of(client, tenant)
    response = await client.post("/acks", json={"room_id": room["room_id"], "seq": room["last_seq"] + 100},
                                 headers=other_tenant.as_user("alice"))
    assert response.status_code == 404


async def test_dm_of_the_same_pair_in_another_tenant_is_a_separate_room(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = await room_of(client, tenant, type_="dm")
    response = await client.post(
        "/rooms", json={"type": "dm", "members": ["bob"]}, headers=other_tenant.as_user("alice")
    )
    assert response.status_code == 201
    assert response.json()["room_id"] != ours["room_id"]
    assert response.json()["unique_key"] == ours["unique_key"]

