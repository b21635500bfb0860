"""Edits, deletions and reactions over HTTP: each an event with its own seq, folded into the messages read model."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Tenant
from tests.service.test_messages import create_room, events, last_seq, messages, send


async def _room_with_message(client: httpx.AsyncClient, tenant: Tenant) -> tuple[str, str]:
    """A group of alice (room admin), bob and carol with one message from bob; (room_id, message_id)."""
    room = await create_room(client, tenant, "alice", ["bob", "carol"])
    sent = await send(client, tenant, room["room_id"], "bob", "first words", meta={"k": 1})
    assert sent.status_code == 201, sent.text
    return room["room_id"], sent.json()["message_id"]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    return body


async def test_the_sender_edits_a_message_and_the_edit_takes_the_next_seq(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    before = await last_seq(client, tenant, room_id, "bob")
    response = await client.patch(f"/rooms/{room_id}/messages/{message_id}", json={"content": "better words"},
                                  headers=tenant.as_user("bob"))
    assert response.status_code == 200, response.text
    assert response.json()["seq"] == before + 1
    [message] = await messages(client, tenant, room_id, "carol")
    assert (message["content"], message["meta"], message["deleted_at"]) == ("better words", {"k": 1}, None)
    assert message["edited_at"] == response.json()["at"]
    assert message["seq"] == before  # the message keeps the seq it was sent with
    log = await events(client, tenant, room_id, "carol", f"after_seq={before - 1}")
    assert [(e["seq"], e["type"]) for e in log] == [(before, "message.sent"), (before + 1, "message.edited")]
    assert log[1]["data"] == {"message_id": message_id, "edited_by": "bob", "content": "better words"}
    assert log[1]["actor"] == "bob"


async def test_only_the_sender_may_edit_and_only_valid_content(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}"
    before = await last_seq(client, tenant, room_id, "bob")
    _error(await client.patch(path, json={"content": "mine now"}, headers=tenant.as_user("alice")),
           403, "NOT_MESSAGE_SENDER")
    _error(await client.patch(path, json={"content": "x"}, headers=tenant.as_user("mallory")), 403, "NOT_A_MEMBER")
    _error(await client.patch(path, json={"content": "x" * 4001}, headers=tenant.as_user("bob")),
           400, "MESSAGE_TOO_LONG")
    assert _error(await client.patch(path, json={"content": "  "}, headers=tenant.as_user("bob")),
                  400, "VALIDATION_ERROR")["error"]["field"] == "content"
    assert _error(await client.patch(path, json={"content": "x", "meta": {}}, headers=tenant.as_user("bob")),
                  400, "VALIDATION_ERROR")["error"]["field"] == "meta"
    _error(await client.patch(f"/rooms/{room_id}/messages/msg_nope", json={"content": "x"},
                              headers=tenant.as_user("bob")), 404, "MESSAGE_NOT_FOUND")
    _error(await client.patch(f"/rooms/room_nope/messages/{message_id}", json={"content": "x"},
                              headers=tenant.as_user("bob")), 404, "ROOM_NOT_FOUND")
    assert await last_seq(client, tenant, room_id, "bob") == before  # nothing refused left an event


async def test_a_deleted_message_keeps_its_seq_without_content_everywhere(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}"
    edited = await client.patch(path, json={"content": "second thoughts"}, headers=tenant.as_user("bob"))
    assert edited.status_code == 200
    deleted = await client.delete(path, headers=tenant.as_user("bob"))
    assert deleted.status_code == 200, deleted.text
    seq = deleted.json()["seq"]
    assert seq == await last_seq(client, tenant, room_id, "bob")

    [message] = await messages(client, tenant, room_id, "carol")
    assert (message["content"], message["meta"], message["deleted_at"]) == ("", None, deleted.json()["at"])
    one = await client.get(path, headers=tenant.as_user("carol"))
    assert one.status_code == 200 and one.json()["content"] == "" and one.json()["deleted_at"] is not None
    # The raw log keeps every event and its seq, but no longer shows what the message said.
    log = await events(client, tenant, room_id, "carol")
    by_type = {e["type"]: e["data"] for e in log}
    assert by_type["message.sent"]["content"] == "" and "meta" not in by_type["message.sent"]
    assert by_type["message.edited"]["content"] == ""
    assert by_type["message.deleted"] == {"message_id": message_id, "deleted_by": "bob"}
    assert [e["seq"] for e in log] == list(range(1, seq + 1))

    # Deleting again answers with the first deletion and appends nothing; a deleted message takes no changes.
    again = await client.delete(path, headers=tenant.as_user("bob"))
    assert again.status_code == 200 and again.json() == deleted.json()
    _error(await client.patch(path, json={"content": "back"}, headers=tenant.as_user("bob")), 409, "MESSAGE_DELETED")
    _error(await client.post(f"{path}/reactions", json={"emoji": "👍"}, headers=tenant.as_user("carol")),
           409, "MESSAGE_DELETED")
    assert await last_seq(client, tenant, room_id, "bob") == seq


async def test_room_admins_and_tenant_admins_delete_others_messages_members_do_not(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    other = (await send(client, tenant, room_id, "bob", "another")).json()["message_id"]
    _error(await client.delete(f"/rooms/{room_id}/messages/{message_id}", headers=tenant.as_user("carol")),
           403, "NOT_ROOM_ADMIN")
    _error(await client.delete(f"/rooms/{room_id}/messages/{message_id}", headers=tenant.as_user("mallory")),
           403, "NOT_A_MEMBER")
    by_room_admin = await client.delete(f"/rooms/{room_id}/messages/{message_id}", headers=tenant.as_user("alice"))
    assert by_room_admin.status_code == 200, by_room_admin.text
    # The tenant's admin ("admin", not in the room) moderates any room of the tenant.
    by_tenant_admin = await client.delete(f"/rooms/{room_id}/messages/{other}", headers=tenant.as_user("admin"))
    assert by_tenant_admin.status_code == 200, by_tenant_admin.text
    log = await events(client, tenant, room_id, "bob")
    assert [(e["type"], e["actor"]) for e in log if e["type"] == "message.deleted"] == [
        ("message.deleted", "alice"), ("message.deleted", "admin")
    ]
    _error(await client.delete(f"/rooms/{room_id}/messages/msg_nope", headers=tenant.as_user("carol")),
           404, "MESSAGE_NOT_FOUND")


async def test_reactions_are_sets_and_only_changes_are_events(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}/reactions"
    start = await last_seq(client, tenant, room_id, "bob")

    first = await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("carol"))
    assert first.status_code == 200, first.text
    assert first.json() == {"message_id": message_id, "emoji": "👍", "changed": True, "seq": start + 1,
                            "reactions": [{"emoji": "👍", "count": 1, "me": True}]}
    repeat = await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("carol"))
    assert (repeat.json()["changed"], repeat.json()["seq"]) == (False, None)
    await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("alice"))
    await client.post(path, json={"emoji": ":tada:"}, headers=tenant.as_user("bob"))

    [message] = await messages(client, tenant, room_id, "bob")
    assert message["reactions"] == [{"emoji": "👍", "count": 2, "me": False},
                                    {"emoji": ":tada:", "count": 1, "me": True}]
    who = await client.get(path, headers=tenant.as_user("bob"))
    assert who.json() == [{"emoji": "👍", "count": 2, "user_ids": ["carol", "alice"]},
                          {"emoji": ":tada:", "count": 1, "user_ids": ["bob"]}]

    removed = await client.delete(f"{path}/{quote('👍')}", headers=tenant.as_user("carol"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["changed"] is True
    assert removed.json()["reactions"] == [{"emoji": "👍", "count": 1, "me": False},
                                           {"emoji": ":tada:", "count": 1, "me": False}]
    not_there = await client.delete(f"{path}/{quote('👍')}", headers=tenant.as_user("carol"))
    assert (not_there.status_code, not_there.json()["changed"]) == (200, False)

    log = await events(client, tenant, room_id, "bob", f"after_seq={start}")
    assert [(e["seq"], e["type"], e["data"]["user_id"]) for e in log] == [
        (start + 1, "reaction.added", "carol"), (start + 2, "reaction.added", "alice"),
        (start + 3, "reaction.added", "bob"), (start + 4, "reaction.removed", "carol"),
    ]


async def test_reactions_need_membership_a_message_and_a_valid_emoji(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}/reactions"
    _error(await client.post(path, json={"emoji": "👍"}, headers=tenant.as_user("mallory")), 403, "NOT_A_MEMBER")
    _error(await client.get(path, headers=tenant.as_user("mallory")), 403, "NOT_A_MEMBER")
    _error(await client.post(f"/rooms/{room_id}/messages/msg_nope/reactions", json={"emoji": "👍"},
                             headers=tenant.as_user("bob")), 404, "MESSAGE_NOT_FOUND")
    for bad in ("", "two words", "x" * 65):
        body = _error(await client.post(path, json={"emoji": bad}, headers=tenant.as_user("bob")),
                      400, "VALIDATION_ERROR")
        assert body["error"]["field"] == "emoji"
    assert _error(await client.delete(f"{path}/{quote('a b')}", headers=tenant.as_user("bob")),
                  400, "VALIDATION_ERROR")["error"]["field"] == "emoji"


@pytest.mark.parametrize("emoji", ["a/b", "/", ".", "..", "👍\n", "a\u0085b"],
                         ids=["slash-inside", "slash", "dot", "dot-dot", "final-newline", "c1-control"])
async def test_an_emoji_that_is_not_one_path_segment_is_refused_at_the_door(
    client: httpx.AsyncClient, tenant: Tenant, emoji: str
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}/reactions"
    added = await client.post(path, json={"emoji": emoji}, headers=tenant.as_user("bob"))
    assert _error(added, 400, "VALIDATION_ERROR")["error"]["field"] == "emoji"


@pytest.mark.parametrize("emoji", ["👍", ":party:", "%", "a%2Fb", "?", "#", "...", "🏳️‍🌈", "a\\b"])
async def test_every_emoji_that_can_be_added_can_be_removed_by_its_url_encoded_path(
    client: httpx.AsyncClient, tenant: Tenant, emoji: str
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}/reactions"
    added = await client.post(path, json={"emoji": emoji}, headers=tenant.as_user("bob"))
    removed = await client.delete(f"{path}/{quote(emoji, safe='')}", headers=tenant.as_user("bob"))
    assert added.status_code == 200, added.text
    assert removed.status_code == 200, removed.text
    assert (removed.json()["emoji"], removed.json()["changed"], removed.json()["reactions"]) == (emoji, True, [])


async def test_racing_reactions_and_deletes_leave_one_consistent_message(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Concurrent adds of the same reaction count once; a delete racing edits leaves the message deleted."""
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}"
    users = ["alice", "bob", "carol"]
    await asyncio.gather(*(client.post(f"{path}/reactions", json={"emoji": "🔥"}, headers=tenant.as_user(u))
                           for u in users for _ in range(3)))
    [message] = await messages(client, tenant, room_id, "bob")
    assert message["reactions"] == [{"emoji": "🔥", "count": 3, "me": True}]

    results = await asyncio.gather(
        *(client.patch(path, json={"content": f"v{i}"}, headers=tenant.as_user("bob")) for i in range(5)),
        client.delete(path, headers=tenant.as_user("bob")),
    )
    assert {r.status_code for r in results} <= {200, 409}
    [message] = await messages(client, tenant, room_id, "bob")
    assert message["content"] == "" and message["deleted_at"] is not None
    log = await events(client, tenant, room_id, "bob")
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


async def test_parallel_deletes_record_one_deletion_and_all_answer_with_it(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The sender, a room admin and the tenant's admin racing to delete: one message.deleted, one answer."""
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}"
    deleters = ["bob", "alice", "admin"] * 4
    results = await asyncio.gather(*(client.delete(path, headers=tenant.as_user(u)) for u in deleters))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    log = await events(client, tenant, room_id, "bob")
    [deletion] = [e for e in log if e["type"] == "message.deleted"]
    assert {(r.json()["seq"], r.json()["at"]) for r in results} == {(deletion["seq"], deletion["created_at"])}
    [message] = await messages(client, tenant, room_id, "bob")
    assert message["deleted_at"] == deletion["created_at"]


async def test_parallel_edits_reactions_and_deletes_record_nothing_after_the_deletion(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id, message_id = await _room_with_message(client, tenant)
    path = f"/rooms/{room_id}/messages/{message_id}"
    requests = []
    for i in range(100):  # 60 edits, 20 reactions and 20 deletions, interleaved
        if i % 5 == 4:
            requests.append(("delete", client.delete(path, headers=tenant.as_user("bob"))))
        elif i % 5 == 3:
            requests.append(("react", client.post(f"{path}/reactions", json={"emoji": f":e{i}:"},
                                                  headers=tenant.as_user("carol"))))
        else:
            requests.append(("edit", client.patch(path, json={"content": f"v{i}"}, headers=tenant.as_user("bob"))))
    responses = await asyncio.gather(*(request for _, request in requests))

    log = await events(client, tenant, room_id, "bob")
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    [deletion] = [e for e in log if e["type"] == "message.deleted"]
    after = [e["type"] for e in log if e["seq"] > deletion["seq"]]
    assert after == [], after
    for (kind, _), response in zip(requests, responses, strict=True):
        if kind == "delete":
            assert response.status_code == 200 and response.json()["seq"] == deletion["seq"], response.text
        elif response.status_code == 200:
            assert response.json()["seq"] < deletion["seq"]
        else:
            _error(response, 409, "MESSAGE_DELETED")
    [message] = await messages(client, tenant, room_id, "bob")
    assert message["deleted_at"] == deletion["created_at"]
    assert message["edited_at"] is None or message["edited_at"] <= message["deleted_at"]
