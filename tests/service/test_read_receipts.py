"""Read positions and unread counts: read up to a seq (never backwards, implying delivery), unread per room."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from projections.streams import user_stream
from tests.conftest import Tenant
from tests.service.test_messages import create_room, send_ok


async def _rooms(client: httpx.AsyncClient, tenant: Tenant, user: str) -> dict[str, dict[str, Any]]:
    response = await client.get("/rooms", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    return {r["room_id"]: r for r in response.json()}


async def _read(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str, seq: int) -> httpx.Response:
    return await client.post(f"/rooms/{room_id}/read", json={"seq": seq}, headers=tenant.as_user(user))


async def _receipts(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str) -> dict[str, tuple[int, int]]:
    response = await client.get(f"/rooms/{room_id}/receipts", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    return {r["user_id"]: (r["delivered_seq"], r["read_seq"]) for r in response.json()}


async def test_unread_counts_others_messages_after_the_read_position(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    room_id = room["room_id"]
    seqs = [await send_ok(client, tenant, room_id, "alice", f"m{i}") for i in range(3)]
    await send_ok(client, tenant, room_id, "bob", "my own")

    bob_view = (await _rooms(client, tenant, "bob"))[room_id]
    assert (bob_view["read_seq"], bob_view["unread_count"]) == (0, 3)  # his own message is not unread to him
    assert (await _rooms(client, tenant, "alice"))[room_id]["unread_count"] == 1

    read = await _read(client, tenant, room_id, "bob", seqs[1])
    assert read.status_code == 200, read.text
    assert read.json() == {"room_id": room_id, "read_seq": seqs[1], "unread_count": 1, "mention_count": 0}
    one = await client.get(f"/rooms/{room_id}", headers=tenant.as_user("bob"))
    assert (one.json()["read_seq"], one.json()["unread_count"]) == (seqs[1], 1)

    # A deleted message is no longer unread.
    listed = await client.get(f"/rooms/{room_id}/messages", headers=tenant.as_user("alice"))
    last_id = next(m["message_id"] for m in listed.json() if m["seq"] == seqs[2])
    assert (await client.delete(f"/rooms/{room_id}/messages/{last_id}", headers=tenant.as_user("alice"))).is_success
    assert (await _rooms(client, tenant, "bob"))[room_id]["unread_count"] == 0


async def test_reading_never_moves_back_and_implies_delivery(
    client: httpx.AsyncClient, pool: asyncpg.Pool, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    room_id = room["room_id"]
    last = await send_ok(client, tenant, room_id, "alice", "hello")
    stream = user_stream(tenant.tenant_id, "bob")

    assert (await _read(client, tenant, room_id, "bob", last)).status_code == 200
    assert (await _receipts(client, tenant, room_id, "alice"))["bob"] == (last, last)
    events_before = await _stream_seq(pool, stream)
    back = await _read(client, tenant, room_id, "bob", 1)
    assert back.status_code == 200 and back.json()["read_seq"] == last
    ack = await client.post("/acks", json={"room_id": room_id, "seq": 2}, headers=tenant.as_user("bob"))
    assert ack.status_code == 200
    assert (await _receipts(client, tenant, room_id, "alice"))["bob"] == (last, last)
    assert await _stream_seq(pool, stream) == events_before  # neither appended anything

    past = await _read(client, tenant, room_id, "bob", last + 1)
    assert (past.status_code, past.json()["error"]["code"], past.json()["error"]["field"]) == (
        400, "VALIDATION_ERROR", "seq")
    outsider = await _read(client, tenant, room_id, "mallory", 1)
    assert (outsider.status_code, outsider.json()["error"]["code"]) == (403, "NOT_A_MEMBER")
    assert (await client.get(f"/rooms/{room_id}/receipts", headers=tenant.as_user("mallory"))).status_code == 403
    assert (await _read(client, tenant, "room_nope", "bob", 1)).status_code == 404


async def test_receipts_list_every_active_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"])
    room_id = room["room_id"]
    seq = await send_ok(client, tenant, room_id, "alice", "hello")
    await client.post("/acks", json={"room_id": room_id, "seq": seq}, headers=tenant.as_user("carol"))
    assert await _receipts(client, tenant, room_id, "bob") == {"alice": (0, 0), "bob": (0, 0), "carol": (seq, 0)}


async def _stream_seq(pool: asyncpg.Pool, stream_id: str) -> int:
    """The last seq of a user's own stream (not a room, so read from the database)."""
    seq: int = await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", stream_id)
    return seq
