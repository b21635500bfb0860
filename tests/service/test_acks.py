"""Delivery acks over HTTP: forward-only receipts, one ack event per forward move in the user's stream."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Tenant, error_of


async def room_with_messages(client: httpx.AsyncClient, tenant: Tenant, count: int) -> tuple[str, int]:
    """A group of alice and bob holding `count` messages; (room_id, last_seq)."""
    response = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    room_id: str = response.json()["room_id"]
    last = response.json()["last_seq"]
    for n in range(count):
        sent = await client.post(f"/rooms/{room_id}/messages", json={"content": f"m{n}"},
                                 headers=tenant.as_user("alice"))
        assert sent.status_code == 201, sent.text
        last = sent.json()["seq"]
    return room_id, last


async def ack(client: httpx.AsyncClient, tenant: Tenant, user: str, room_id: str, seq: int) -> httpx.Response:
    """POST /acks as `user`."""
    return await client.post("/acks", json={"room_id": room_id, "seq": seq}, headers=tenant.as_user(user))


async def receipt(pool: asyncpg.Pool, tenant: Tenant, user: str, room_id: str) -> int | None:
    """The user's acked seq in the room as the receipts table holds it (None: no row)."""
    seq: int | None = await pool.fetchval(
        "SELECT seq FROM receipts WHERE tenant_id = $1 AND user_id = $2 AND room_id = $3",
        tenant.tenant_id, user, room_id,
    )
    return seq


async def acked_seqs_in_user_stream(pool: asyncpg.Pool, tenant: Tenant, user: str) -> list[int]:
    """The seqs named by the ack.recorded events in the user's own stream, in stream order."""
    rows = await pool.fetch(
        "SELECT (data->>'seq')::bigint AS acked FROM events WHERE stream_id = $1 AND type = 'ack.recorded'"
        " ORDER BY seq",
        f"user:{tenant.tenant_id}:{user}",
    )
    return [r["acked"] for r in rows]


async def test_ack_returns_success_and_records_the_receipt(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 2)
    response = await ack(client, tenant, "bob", room_id, last)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert await receipt(pool, tenant, "bob", room_id) == last


async def test_ack_never_moves_backwards(client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    room_id, _ = await room_with_messages(client, tenant, 3)
    assert (await ack(client, tenant, "bob", room_id, 5)).status_code == 200
    backwards = await ack(client, tenant, "bob", room_id, 3)
    assert backwards.status_code == 200
    assert backwards.json() == {"success": True}
    assert await receipt(pool, tenant, "bob", room_id) == 5


async def test_user_stream_holds_one_ack_event_per_forward_move(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, _ = await room_with_messages(client, tenant, 3)
    for seq in (5, 3, 5, 4, 6, 6):
        assert (await ack(client, tenant, "bob", room_id, seq)).status_code == 200
    assert await acked_seqs_in_user_stream(pool, tenant, "bob") == [5, 6]
    assert await receipt(pool, tenant, "bob", room_id) == 6


async def test_ack_of_seq_zero_records_nothing(client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    room_id, _ = await room_with_messages(client, tenant, 1)
    assert (await ack(client, tenant, "bob", room_id, 0)).status_code == 200
    assert await receipt(pool, tenant, "bob", room_id) is None
    assert await acked_seqs_in_user_stream(pool, tenant, "bob") == []


async def test_acks_of_different_rooms_are_kept_apart(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    first, first_last = await room_with_messages(client, tenant, 1)
    second, second_last = await room_with_messages(client, tenant, 3)
    assert (await ack(client, tenant, "bob", second, second_last)).status_code == 200
    assert (await ack(client, tenant, "bob", first, first_last)).status_code == 200
    assert await receipt(pool, tenant, "bob", first) == first_last
    assert await receipt(pool, tenant, "bob", second) == second_last


async def test_acks_of_different_users_are_kept_apart(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 2)
    assert (await ack(client, tenant, "alice", room_id, last)).status_code == 200
    assert (await ack(client, tenant, "bob", room_id, last - 1)).status_code == 200
    assert await receipt(pool, tenant, "alice", room_id) == last
    assert await receipt(pool, tenant, "bob", room_id) == last - 1


async def test_ack_beyond_the_rooms_last_seq_is_400_on_seq(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 1)
    response = await ack(client, tenant, "bob", room_id, last + 1)
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "seq")
    assert await receipt(pool, tenant, "bob", room_id) is None


async def test_ack_of_exactly_the_last_seq_is_accepted(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 0)
    assert (await ack(client, tenant, "bob", room_id, last)).status_code == 200
    assert await receipt(pool, tenant, "bob", room_id) == last


async def test_ack_of_a_whole_float_seq_is_taken_as_that_integer(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 1)
    response = await client.post("/acks", json={"room_id": room_id, "seq": float(last)}, headers=tenant.as_user("bob"))
    assert response.status_code == 200, response.text
    assert await receipt(pool, tenant, "bob", room_id) == last


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room_id": "room_x", "seq": -1}, "seq"),
        ({"room_id": "room_x", "seq": "5"}, "seq"),
        ({"room_id": "room_x", "seq": 1.5}, "seq"),
        ({"room_id": "room_x", "seq": 2**63}, "seq"),
        ({"seq": 1}, "room_id"),
        ({"room_id": "", "seq": 1}, "room_id"),
        ({"room_id": "room_x", "seq": 1, "user_id": "bob"}, "user_id"),
    ],
    ids=["negative-seq", "seq-string", "seq-float", "seq-beyond-bigint", "missing-room-id", "empty-room-id",
         "unknown-field"],
)
async def test_ack_with_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/acks", json=body, headers=tenant.as_user("bob"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)


async def test_ack_by_non_member_is_403_not_a_member(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id, last = await room_with_messages(client, tenant, 1)
    response = await ack(client, tenant, "mallory", room_id, last)
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"
    assert await acked_seqs_in_user_stream(pool, tenant, "mallory") == []


async def test_ack_by_removed_member_is_403_not_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, last = await room_with_messages(client, tenant, 1)
    assert (await client.delete(f"/rooms/{room_id}/members/bob", headers=tenant.as_user("bob"))).is_success
    response = await ack(client, tenant, "bob", room_id, last)
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


async def test_ack_of_unknown_room_is_404_room_not_found(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await ack(client, tenant, "bob", "room_doesnotexist", 1)
    assert error_of(response, 404)["code"] == "ROOM_NOT_FOUND"


async def test_ack_does_not_change_the_rooms_log(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, last = await room_with_messages(client, tenant, 2)
    assert (await ack(client, tenant, "bob", room_id, last)).status_code == 200
    room = (await client.get(f"/rooms/{room_id}", headers=tenant.as_user("bob"))).json()
    assert room["last_seq"] == last
