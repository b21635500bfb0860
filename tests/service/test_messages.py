"""Messages and the raw room log over HTTP: send, retry with client_msg_id, page, sync events by seq."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant, error_of


async def create_room(client: httpx.AsyncClient, tenant: Tenant, creator: str, members: list[str]) -> dict[str, Any]:
    """Create a group as `creator` with `members` and return its body."""
    response = await client.post("/rooms", json={"type": "group", "members": members},
                                 headers=tenant.as_user(creator))
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


async def send(
    client: httpx.AsyncClient, tenant: Tenant, room_id: str, sender: str, content: str = "hi", **fields: Any
) -> httpx.Response:
    """POST one message as `sender`; the raw response."""
    return await client.post(
        f"/rooms/{room_id}/messages", json={"content": content, **fields}, headers=tenant.as_user(sender)
    )


async def send_ok(client: httpx.AsyncClient, tenant: Tenant, room_id: str, sender: str, content: str = "hi") -> int:
    """Send a message that must succeed; its seq."""
    response = await send(client, tenant, room_id, sender, content)
    assert response.status_code == 201, response.text
    seq: int = response.json()["seq"]
    return seq


async def messages(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str, query: str = "") -> list[Any]:
    """GET /rooms/{id}/messages as `user` (must be 200)."""
    response = await client.get(f"/rooms/{room_id}/messages?{query}", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


async def events(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str, query: str = "") -> list[Any]:
    """GET /rooms/{id}/events as `user` (must be 200)."""
    response = await client.get(f"/rooms/{room_id}/events?{query}", headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


async def last_seq(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str) -> int:
    """The room's last_seq as GET /rooms/{id} reports it."""
    seq: int = (await client.get(f"/rooms/{room_id}", headers=tenant.as_user(user))).json()["last_seq"]
    return seq


@pytest.fixture
async def room_with_five_messages(client: httpx.AsyncClient, tenant: Tenant) -> str:
    """A room of alice and bob (seqs 1-3) holding messages m4..m8 at seqs 4..8."""
    room = await create_room(client, tenant, "alice", ["bob"])
    for seq in range(4, 9):
        assert await send_ok(client, tenant, room["room_id"], "alice", f"m{seq}") == seq
    room_id: str = room["room_id"]
    return room_id


# --- send ---------------------------------------------------------------------------------------


async def test_send_returns_201_with_id_and_the_next_seq(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await send(client, tenant, room["room_id"], "bob")
    assert response.status_code == 201
    body = response.json()
    assert body["message_id"].startswith("msg_")
    assert body["seq"] == room["last_seq"] + 1
    assert body["created_at"]
    assert "X-Idempotent-Replay" not in response.headers


async def test_sent_message_reads_back_with_sender_meta_and_client_msg_id(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    meta = {"type": "text", "mentions": ["bob"]}
    sent = (await send(client, tenant, room["room_id"], "alice", "hello", meta=meta, client_msg_id="c-1")).json()
    [message] = await messages(client, tenant, room["room_id"], "bob")
    assert message == {
        "message_id": sent["message_id"], "sender_id": "alice", "seq": sent["seq"], "content": "hello",
        "meta": meta, "created_at": sent["created_at"], "client_msg_id": "c-1", "edited_at": None,
        "deleted_at": None, "reactions": [], "thread_id": None, "reply_count": 0, "last_reply_at": None,
        "type": "text", "attachments": [],
        "mentions": [], "forwarded_from": None,
    }


async def test_content_of_4000_characters_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await send(client, tenant, room["room_id"], "alice", "é" * 4000)
    assert response.status_code == 201
    assert (await messages(client, tenant, room["room_id"], "alice"))[0]["content"] == "é" * 4000


async def test_content_of_4001_characters_is_400_message_too_long(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await send(client, tenant, room["room_id"], "alice", "x" * 4001)
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("MESSAGE_TOO_LONG", "content")
    assert await last_seq(client, tenant, room["room_id"], "alice") == room["last_seq"]


@pytest.mark.parametrize("content", ["", "   \n\t"], ids=["empty", "whitespace"])
async def test_empty_content_is_400_on_content(client: httpx.AsyncClient, tenant: Tenant, content: str) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await send(client, tenant, room["room_id"], "alice", content)
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "content")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": 5}, "content"),
        ({"content": "hi", "meta": "text"}, "meta"),
        ({"content": "hi", "client_msg_id": ""}, "client_msg_id"),
        ({"content": "hi", "sender_id": "bob"}, "sender_id"),
    ],
    ids=["missing-content", "content-not-a-string", "meta-not-an-object", "empty-client-msg-id", "unknown-field"],
)
async def test_send_with_invalid_body_is_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.post(f"/rooms/{room['room_id']}/messages", json=body, headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)


async def test_send_with_malformed_json_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.post(
        f"/rooms/{room['room_id']}/messages", content=b"content=hi",
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    assert error_of(response, 400)["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("levels", [1_000, 10_000])
async def test_send_with_meta_nested_too_deep_is_400_on_meta_and_appends_nothing(
    client: httpx.AsyncClient, tenant: Tenant, levels: int
) -> None:
    room = await create_room(client, tenant, "alice", [])
    body = '{"content":"hi","meta":' + '{"a":' * levels + "1" + "}" * levels + "}"
    response = await client.post(
        f"/rooms/{room['room_id']}/messages", content=body.encode(),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "meta")
    assert await last_seq(client, tenant, room["room_id"], "alice") == room["last_seq"]


async def test_send_with_a_deep_value_under_an_unknown_field_is_400_naming_it(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", [])
    body = '{"content":"hi","extra":' + "[" * 10_000 + "]" * 10_000 + "}"
    response = await client.post(
        f"/rooms/{room['room_id']}/messages", content=body.encode(),
        headers={**tenant.as_user("alice"), "Content-Type": "application/json"},
    )
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "extra")


async def test_send_with_meta_over_16_kib_is_400_on_meta(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await send(client, tenant, room["room_id"], "alice", meta={"k": "x" * 16_384})
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "meta")


async def test_send_to_unknown_room_is_404_room_not_found(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await send(client, tenant, "room_doesnotexist", "alice")
    assert error_of(response, 404)["code"] == "ROOM_NOT_FOUND"


async def test_send_by_non_member_is_403_and_appends_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await send(client, tenant, room["room_id"], "mallory")
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"
    assert await last_seq(client, tenant, room["room_id"], "alice") == room["last_seq"]


@pytest.mark.parametrize("path", ["messages", "events"])
async def test_reading_by_non_member_is_403_not_a_member(
    client: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    response = await client.get(f"/rooms/{room['room_id']}/{path}", headers=tenant.as_user("mallory"))
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


async def test_removed_member_can_no_longer_send(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    await send_ok(client, tenant, room["room_id"], "bob")
    assert (await client.delete(f"/rooms/{room['room_id']}/members/bob", headers=tenant.as_user("alice"))).is_success
    response = await send(client, tenant, room["room_id"], "bob")
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


@pytest.mark.parametrize("path", ["messages", "events"])
async def test_removed_member_can_no_longer_read(client: httpx.AsyncClient, tenant: Tenant, path: str) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    assert (await client.get(f"/rooms/{room['room_id']}/{path}", headers=tenant.as_user("bob"))).status_code == 200
    assert (await client.delete(f"/rooms/{room['room_id']}/members/bob", headers=tenant.as_user("bob"))).is_success
    response = await client.get(f"/rooms/{room['room_id']}/{path}", headers=tenant.as_user("bob"))
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


# --- client_msg_id retries ----------------------------------------------------------------------


async def test_retry_with_same_client_msg_id_returns_the_first_result(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    first = await send(client, tenant, room["room_id"], "alice", "once", client_msg_id="retry-1")
    again = await send(client, tenant, room["room_id"], "alice", "once", client_msg_id="retry-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["X-Idempotent-Replay"] == "true"


async def test_retry_with_same_client_msg_id_does_not_append(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    for _ in range(3):
        response = await send(client, tenant, room["room_id"], "alice", "once", client_msg_id="retry-2")
        assert response.status_code == 201
    assert await last_seq(client, tenant, room["room_id"], "alice") == room["last_seq"] + 1
    logged = await events(client, tenant, room["room_id"], "alice")
    assert [e["type"] for e in logged].count("message.sent") == 1
    assert len(await messages(client, tenant, room["room_id"], "bob")) == 1


async def test_a_client_msg_id_reused_with_another_body_is_a_conflict_and_appends_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    room_id = room["room_id"]
    first = await send(client, tenant, room_id, "alice", "once", meta={"k": 1}, client_msg_id="reused")
    assert first.status_code == 201, first.text
    for change in ({"content": "twice"}, {"meta": {"k": 2}}, {"meta": None}, {"thread_id": first.json()["message_id"]}):
        fields = {"content": "once", "meta": {"k": 1}, "client_msg_id": "reused", **change}
        response = await client.post(f"/rooms/{room_id}/messages", json=fields, headers=tenant.as_user("alice"))
        error = error_of(response, 409)
        assert (error["code"], error["field"]) == ("IDEMPOTENCY_KEY_REUSED", "client_msg_id"), change
        assert "X-Idempotent-Replay" not in response.headers
    same = await send(client, tenant, room_id, "alice", "once", meta={"k": 1}, client_msg_id="reused")
    assert (same.status_code, same.json(), same.headers["X-Idempotent-Replay"]) == (201, first.json(), "true")
    assert await last_seq(client, tenant, room_id, "alice") == first.json()["seq"]


async def test_racing_sends_of_one_client_msg_id_with_different_bodies_keep_one_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    responses = await asyncio.gather(*(send(client, tenant, room["room_id"], "alice", f"v{i % 2}",
                                            client_msg_id="raced") for i in range(10)))
    created = [r for r in responses if r.status_code == 201]
    [winner] = {r.json()["message_id"] for r in created}
    [message] = await messages(client, tenant, room["room_id"], "bob")
    assert message["message_id"] == winner
    for i, response in enumerate(responses):
        if f"v{i % 2}" == message["content"]:  # the winner, or a replay of its body
            assert response.status_code == 201, response.text
        else:
            assert error_of(response, 409)["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_same_client_msg_id_from_different_users_are_different_messages(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    from_alice = (await send(client, tenant, room["room_id"], "alice", "a", client_msg_id="same")).json()
    from_bob = await send(client, tenant, room["room_id"], "bob", "b", client_msg_id="same")
    assert from_bob.status_code == 201
    assert "X-Idempotent-Replay" not in from_bob.headers
    assert from_bob.json()["message_id"] != from_alice["message_id"]
    assert from_bob.json()["seq"] == from_alice["seq"] + 1


async def test_same_client_msg_id_in_another_room_is_a_new_message(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await create_room(client, tenant, "alice", [])
    second = await create_room(client, tenant, "alice", [])
    a = (await send(client, tenant, first["room_id"], "alice", client_msg_id="per-room")).json()
    b = await send(client, tenant, second["room_id"], "alice", client_msg_id="per-room")
    assert "X-Idempotent-Replay" not in b.headers
    assert b.json()["message_id"] != a["message_id"]


# --- GET /messages paging -----------------------------------------------------------------------


# Against `room_with_five_messages` (messages at seqs 4..8): the query and the seqs it returns.
PAGES: list[tuple[str, list[int]]] = [
    ("", [4, 5, 6, 7, 8]),
    ("limit=2", [7, 8]),
    ("after_seq=0", [4, 5, 6, 7, 8]),
    ("after_seq=5", [6, 7, 8]),
    ("after_seq=5&limit=2", [6, 7]),
    ("after_seq=8", []),
    ("before_seq=6", [4, 5]),
    ("before_seq=8&limit=2", [6, 7]),
    ("before_seq=4", []),
    ("after_seq=4&before_seq=8", [5, 6, 7]),
    ("after_seq=4&before_seq=8&limit=2", [5, 6]),
    ("after_seq=6&before_seq=7", []),
]


@pytest.mark.parametrize(("query", "seqs"), PAGES, ids=[query or "no-params" for query, _ in PAGES])
async def test_messages_page_by_seq_in_ascending_order(
    client: httpx.AsyncClient, tenant: Tenant, room_with_five_messages: str, query: str, seqs: list[int]
) -> None:
    page = await messages(client, tenant, room_with_five_messages, "bob", query)
    assert [m["seq"] for m in page] == seqs
    assert [m["content"] for m in page] == [f"m{s}" for s in seqs]


async def test_paging_forward_by_after_seq_visits_every_message_once(
    client: httpx.AsyncClient, tenant: Tenant, room_with_five_messages: str
) -> None:
    seen: list[int] = []
    cursor = 0
    while page := await messages(client, tenant, room_with_five_messages, "bob", f"after_seq={cursor}&limit=2"):
        seen += [m["seq"] for m in page]
        cursor = page[-1]["seq"]
    assert seen == [4, 5, 6, 7, 8]


async def test_paging_backward_by_before_seq_visits_every_message_once(
    client: httpx.AsyncClient, tenant: Tenant, room_with_five_messages: str
) -> None:
    seen: list[int] = []
    query = "limit=2"
    while page := await messages(client, tenant, room_with_five_messages, "bob", query):
        seen = [m["seq"] for m in page] + seen
        query = f"before_seq={page[0]['seq']}&limit=2"
    assert seen == [4, 5, 6, 7, 8]


async def test_messages_default_limit_is_50_newest(client: httpx.AsyncClient, tenant: Tenant) -> None:
    senders = ["alice", "bob", "carol", "dave"]  # spread out: one user alone would hit the per-user send limit
    room = await create_room(client, tenant, "alice", senders[1:])
    for n in range(52):
        await send_ok(client, tenant, room["room_id"], senders[n % len(senders)], f"n{n}")
    page = await messages(client, tenant, room["room_id"], "alice")
    assert [m["content"] for m in page] == [f"n{n}" for n in range(2, 52)]


async def test_messages_skip_membership_and_rename_seqs(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    first = await send_ok(client, tenant, room["room_id"], "alice", "before")
    await client.post(f"/rooms/{room['room_id']}/members", json={"user_ids": ["bob"]}, headers=tenant.as_user("alice"))
    second = await send_ok(client, tenant, room["room_id"], "bob", "after")
    assert second == first + 2
    assert [m["seq"] for m in await messages(client, tenant, room["room_id"], "bob")] == [first, second]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=many", "limit"),
        ("after_seq=-1", "after_seq"),
        ("after_seq=1.5", "after_seq"),
        ("before_seq=0", "before_seq"),
        ("before_seq=x", "before_seq"),
    ],
)
async def test_messages_with_bad_query_is_400_naming_the_parameter(
    client: httpx.AsyncClient, tenant: Tenant, query: str, field: str
) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.get(f"/rooms/{room['room_id']}/messages?{query}", headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)


async def test_messages_limit_of_100_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", [])
    await send_ok(client, tenant, room["room_id"], "alice")
    assert len(await messages(client, tenant, room["room_id"], "alice", "limit=100")) == 1


# --- GET /events --------------------------------------------------------------------------------


async def test_events_hold_every_event_type_with_gapless_seqs(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    room_id, alice = room["room_id"], tenant.as_user("alice")
    assert (await client.post(f"/rooms/{room_id}/members", json={"user_ids": ["carol"]}, headers=alice)).is_success
    assert (await client.patch(f"/rooms/{room_id}", json={"name": "Renamed"}, headers=alice)).is_success
    await send_ok(client, tenant, room_id, "carol", "hello")
    assert (await client.delete(f"/rooms/{room_id}/members/carol", headers=alice)).is_success

    logged = await events(client, tenant, room_id, "bob")
    assert [e["type"] for e in logged] == [
        "room.created", "member.joined", "member.joined", "member.joined", "room.updated", "message.sent",
        "member.removed",
    ]
    assert [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    assert await last_seq(client, tenant, room_id, "bob") == len(logged)


async def test_events_carry_actor_and_data_without_the_type_tag(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    sent = (await send(client, tenant, room["room_id"], "bob", "payload")).json()
    last = (await events(client, tenant, room["room_id"], "alice", f"after_seq={sent['seq'] - 1}"))[0]
    assert (last["seq"], last["type"], last["actor"]) == (sent["seq"], "message.sent", "bob")
    assert last["data"]["message_id"] == sent["message_id"]
    assert last["data"]["content"] == "payload"
    assert "type" not in last["data"]


@pytest.mark.parametrize(
    ("query", "seqs"),
    [("after_seq=2", [3, 4, 5]), ("after_seq=2&limit=2", [3, 4]), ("limit=1", [1]), ("after_seq=5", [])],
)
async def test_events_page_by_after_seq_and_limit(
    client: httpx.AsyncClient, tenant: Tenant, query: str, seqs: list[int]
) -> None:
    room = await create_room(client, tenant, "alice", ["bob"])
    await send_ok(client, tenant, room["room_id"], "alice")
    await send_ok(client, tenant, room["room_id"], "alice")
    assert [e["seq"] for e in await events(client, tenant, room["room_id"], "alice", query)] == seqs


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=1001", "limit"), ("after_seq=-1", "after_seq"), ("after_seq=a", "after_seq")],
)
async def test_events_with_bad_query_is_400_naming_the_parameter(
    client: httpx.AsyncClient, tenant: Tenant, query: str, field: str
) -> None:
    room = await create_room(client, tenant, "alice", [])
    response = await client.get(f"/rooms/{room['room_id']}/events?{query}", headers=tenant.as_user("alice"))
    error = error_of(response, 400)
    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", field)
