"""Threads: a reply names a top-level message of the room as its thread_id; roots count their replies."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Tenant
from tests.service.test_messages import create_room, events, messages, send


async def _root(client: httpx.AsyncClient, tenant: Tenant) -> tuple[str, str]:
    room = await create_room(client, tenant, "alice", ["bob"])
    root = await send(client, tenant, room["room_id"], "alice", "a question")
    assert root.status_code == 201, root.text
    return room["room_id"], root.json()["message_id"]


async def test_replies_are_room_messages_with_a_thread_and_their_root_counts_them(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id, root_id = await _root(client, tenant)
    first = await send(client, tenant, room_id, "bob", "an answer", thread_id=root_id, client_msg_id="r1")
    assert first.status_code == 201, first.text
    retried = await send(client, tenant, room_id, "bob", "an answer", thread_id=root_id, client_msg_id="r1")
    assert retried.json() == first.json() and retried.headers["X-Idempotent-Replay"] == "true"
    second = await send(client, tenant, room_id, "alice", "thanks", thread_id=root_id)
    assert second.status_code == 201

    timeline = await messages(client, tenant, room_id, "bob")
    by_id = {m["message_id"]: m for m in timeline}
    assert [m["message_id"] for m in timeline] == [root_id, first.json()["message_id"], second.json()["message_id"]]
    assert (by_id[root_id]["reply_count"], by_id[root_id]["thread_id"]) == (2, None)
    assert by_id[root_id]["last_reply_at"] == second.json()["created_at"]
    assert by_id[first.json()["message_id"]]["thread_id"] == root_id

    thread = await messages(client, tenant, room_id, "bob", f"thread_id={root_id}")
    assert [m["content"] for m in thread] == ["an answer", "thanks"]
    assert await messages(client, tenant, room_id, "bob", f"thread_id={root_id}&after_seq={first.json()['seq']}") \
        == thread[1:]
    log = await events(client, tenant, room_id, "bob", f"after_seq={first.json()['seq'] - 1}")
    assert log[0]["data"]["thread_id"] == root_id


async def test_a_reply_needs_a_top_level_message_of_the_same_room(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, root_id = await _root(client, tenant)
    reply = (await send(client, tenant, room_id, "bob", "in thread", thread_id=root_id)).json()["message_id"]
    nested = await send(client, tenant, room_id, "alice", "deeper", thread_id=reply)
    assert (nested.status_code, nested.json()["error"]["code"], nested.json()["error"]["field"]) == (
        400, "VALIDATION_ERROR", "thread_id")
    missing = await send(client, tenant, room_id, "alice", "to nothing", thread_id="msg_nope")
    assert (missing.status_code, missing.json()["error"]["code"], missing.json()["error"]["field"]) == (
        404, "MESSAGE_NOT_FOUND", "thread_id")
    other_room = await create_room(client, tenant, "alice", ["bob"])
    elsewhere = await send(client, tenant, other_room["room_id"], "alice", "cross", thread_id=root_id)
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "MESSAGE_NOT_FOUND")
    # An outsider learns that they are one, not whether the message exists.
    for thread_id in (root_id, "msg_nope"):
        outsider = await send(client, tenant, room_id, "mallory", "hi", thread_id=thread_id)
        assert (outsider.status_code, outsider.json()["error"]["code"]) == (403, "NOT_A_MEMBER")
    [root] = [m for m in await messages(client, tenant, room_id, "alice") if m["message_id"] == root_id]
    assert root["reply_count"] == 1


async def test_concurrent_replies_are_all_counted_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, root_id = await _root(client, tenant)
    responses = await asyncio.gather(*(
        send(client, tenant, room_id, "bob" if i % 2 else "alice", f"r{i % 12}", thread_id=root_id,
             client_msg_id=f"c{i % 12}")
        for i in range(24)
    ))
    assert {r.status_code for r in responses} == {201}
    thread = await messages(client, tenant, room_id, "bob", f"thread_id={root_id}&limit=100")
    assert len(thread) == 12  # 12 distinct (sender, client_msg_id) pairs; the repeats were replays
    [root] = [m for m in await messages(client, tenant, room_id, "bob", "limit=100") if m["message_id"] == root_id]
    assert root["reply_count"] == 12
