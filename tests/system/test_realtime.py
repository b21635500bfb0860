"""The WebSocket gateway of one real `roomlog serve` process on the session's PostgreSQL and NATS.

Resume by last_seq under concurrent sends, who receives what (members only, one tenant only, nothing after
removal), the frames a client may send (send, ack, typing) and what they cause, token checks at the upgrade,
notifications, slow clients and shutdown. Tests needing other server settings, or killing the server, start
their own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.identity.tokens import TokenSigner, TokenType
from tests.conftest import Tenant, make_tenant
from tests.system._servers import (
    Api,
    Frame,
    WsClient,
    closing,
    small_receive_buffer_socket,
    start_serve,
    wait_live,
    ws_url,
)
from tests.system.conftest import Processes, Serve

JWT_KID = "rt1"
JWT_SECRET = "realtime-test-secret-" + uuid.uuid4().hex
RESUME_BEFORE = 20
RESUME_SENDS = 300
RESUME_SENDERS = 6
# Small pages, so a catch-up crosses page boundaries with few events; 100 events of BATCH_PAD characters
# are more than one events.batch frame (256 KiB).
CATCH_UP_PAGE = 100
BATCH_BEFORE = 250
BATCH_PAD = 3_000
SLOW_QUEUE_SIZE = 50
SLOW_SENDS = 700
# Random (permessage-deflate squeezes repeated text to nothing) and large: the server's kernel send buffer
# grows to 4 MB before its writes block, and only then does the connection's queue fill. 12,000 random
# bytes are 16,000 characters: as much as a free-form field such as meta may take (service/web/bodies.py).
SLOW_PAD = 12_000
STALL_SEND_TIMEOUT = 1.0
# Two timed-out writes (the event, then the resync) and slack for a loaded machine.
STALL_BOUND = 10.0
RECHECK_SECONDS = 0.5


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str) -> AsyncIterator[Serve]:
    """One `roomlog serve` for the module, signing tokens with a key the tests know."""
    with Processes(tmp_path_factory.mktemp("realtime")) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                  ROOMLOG_JWT_KEYS=f"{JWT_KID}={JWT_SECRET}",
                                  ROOMLOG_WS_CATCH_UP_PAGE=str(CATCH_UP_PAGE))
        await wait_live(serve, await make_tenant(database_url))
        yield serve


@pytest.fixture
async def api(server: Serve, tenant: Tenant) -> AsyncIterator[Api]:
    async with Api(server.base_url, tenant) as client:
        yield client


async def ws(server: Serve, api: Api, user: str) -> WsClient:
    """A connected client of `user`."""
    return await WsClient.open(server.base_url, await api.token(user))


def signed(token_type: TokenType, *, tenant_id: str, user_id: str, secret: str = JWT_SECRET,
           now: Callable[[], float] = time.time) -> str:
    """A token signed like the server signs (or with another secret / clock)."""
    signer = TokenSigner({JWT_KID: secret}, issuer="roomlog", clock=now)
    token, _ = signer.issue(tenant_id=tenant_id, user_id=user_id, role="member", session_id=None,
                            token_type=token_type, ttl_seconds=60)
    return token


def reached(client: WsClient, last: dict[str, int]) -> Callable[[], bool]:
    """Whether the client's last event of each room is the given seq (checked when called)."""
    return lambda: all(client.seqs(room_id)[-1:] == [seq] for room_id, seq in last.items())


def errors(client: WsClient) -> list[Frame]:
    return [f for f in client.frames if f.get("type") == "error"]


# --- resume ---------------------------------------------------------------------------------------------


async def test_resume_sends_missed_events_then_live_ones_in_seq_order_without_gap_or_duplicate(
    server: Serve, api: Api
) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    for i in range(RESUME_BEFORE):
        await api.send(room_id, "alice", f"before {i}")
    last_seen = await api.last_seq(room_id, "bob")
    done = 0
    under_way = asyncio.Event()

    async def sender(worker: int) -> None:
        nonlocal done
        for i in range(worker, RESUME_SENDS, RESUME_SENDERS):
            await api.send(room_id, "alice", f"during {i}")
            done += 1
            if done >= 30:
                under_way.set()

    senders = [asyncio.create_task(sender(w)) for w in range(RESUME_SENDERS)]
    bob = await ws(server, api, "bob")
    async with closing(bob):
        await under_way.wait()
        synced = await bob.sync({room_id: last_seen})
        await asyncio.gather(*senders)
        last = await api.last_seq(room_id, "bob")
        await bob.wait_until(lambda: bob.seqs(room_id)[-1:] == [last])
        await bob.barrier()
        log = await api.events(room_id, "bob", after_seq=last_seen)

    # The sync overlapped the sends: part came from the log, part live.
    assert last_seen < synced["rooms"][room_id] < last
    assert bob.seqs(room_id) == list(range(last_seen + 1, last + 1))
    assert [(f["seq"], f["data"]["message_id"]) for f in bob.room_events(room_id)] == [
        (e["seq"], e["data"]["message_id"]) for e in log
    ]


async def test_batched_resume_crosses_pages_and_batch_cuts_in_seq_order_then_live_events_follow(
    server: Serve, api: Api
) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    # More than one catch-up page, each page more than one batch of events.
    pad = "x" * BATCH_PAD

    async def send_many(worker: int, count: int, label: str) -> None:
        for i in range(worker, count, RESUME_SENDERS):
            await api.send(room_id, "alice", f"{label} {i} {pad}")

    await asyncio.gather(*(send_many(w, BATCH_BEFORE, "before") for w in range(RESUME_SENDERS)))
    deleted = await api.send(room_id, "alice", "gone soon")
    response = await api.call("DELETE", f"/rooms/{room_id}/messages/{deleted['message_id']}", "alice")
    assert response.status_code == 200, response.text
    bob = await ws(server, api, "bob")
    async with closing(bob):
        during = [asyncio.create_task(send_many(w, RESUME_SENDS, "during")) for w in range(RESUME_SENDERS)]
        synced = await bob.sync({room_id: 0}, batch=True)
        await asyncio.gather(*during)
        last = await api.last_seq(room_id, "bob")
        await bob.wait_until(lambda: [e["seq"] for e in delivered(bob, room_id)[-1:]] == [last])
        await bob.barrier()
        log = await api.events(room_id, "bob")

    until_synced = bob.frames[:bob.frames.index(synced)]
    batches = [f for f in until_synced if f.get("type") == "events.batch"]
    assert len(batches) >= 3 and all(f["room_id"] == room_id for f in batches)
    for batch in batches:  # each batch is consecutive
        seqs = [e["seq"] for e in batch["events"]]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # The sync overlapped the sends: the batches end where the sync says, live events follow one frame each.
    assert batches[-1]["events"][-1]["seq"] == synced["rooms"][room_id] < last
    assert not [f for f in until_synced if f.get("room_id") == room_id and "seq" in f]
    assert bob.seqs(room_id) and bob.seqs(room_id)[0] > synced["rooms"][room_id]
    events = delivered(bob, room_id)
    assert [e["seq"] for e in events] == list(range(1, last + 1))
    assert [(e["seq"], e["type"], e["data"].get("message_id")) for e in events] == [
        (e["seq"], "message.new" if e["type"] == "message.sent" else e["type"], e["data"].get("message_id"))
        for e in log
    ]
    assert next(e for e in events if e["data"].get("message_id") == deleted["message_id"])["data"]["content"] == ""


def delivered(client: WsClient, room_id: str) -> list[Frame]:
    """The room's events in arrival order, whether in events.batch frames or one frame each."""
    events: list[Frame] = []
    for frame in client.frames:
        if frame.get("type") == "events.batch" and frame.get("room_id") == room_id:
            events.extend(frame["events"])
        elif frame.get("room_id") == room_id and "seq" in frame and "actor" in frame:
            events.append(frame)
    return events


async def test_sync_of_a_room_the_user_is_not_in_gets_not_a_member_and_no_events(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    bob, carol = await ws(server, api, "bob"), await ws(server, api, "carol")
    async with closing(bob, carol):
        await bob.sync({room_id: 0})
        synced = await carol.sync({room_id: 0})
        sent = await api.send(room_id, "alice", "members only")
        await bob.wait_for(lambda f: f.get("seq") == sent["seq"])
        await carol.barrier()

    assert [(e["code"], e["room_id"]) for e in errors(carol)] == [("NOT_A_MEMBER", room_id)]
    assert synced["rooms"] == {}
    assert carol.room_events(room_id) == []


async def test_sync_of_another_tenants_room_gets_room_not_found_and_no_events(
    server: Serve, api: Api, other_tenant: Tenant
) -> None:
    async with Api(server.base_url, other_tenant) as other:
        room = await other.create_room("alice", ["bob"])
        room_id = room["room_id"]
        theirs = await ws(server, other, "bob")
        ours = await ws(server, api, "bob")  # the same user id, in another tenant
        async with closing(theirs, ours):
            await theirs.sync({room_id: 0})
            await ours.sync({room_id: 0})
            sent = await other.send(room_id, "alice", "tenant secret")
            await theirs.wait_for(lambda f: f.get("seq") == sent["seq"])
            await ours.barrier()

    assert [(e["code"], e["room_id"]) for e in errors(ours)] == [("ROOM_NOT_FOUND", room_id)]
    assert ours.room_events(room_id) == []


async def test_removed_member_receives_member_removed_and_nothing_after_it(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob", "carol"])
    room_id = room["room_id"]
    bob, carol = await ws(server, api, "bob"), await ws(server, api, "carol")
    async with closing(bob, carol):
        await bob.sync({room_id: 0})
        await carol.sync({room_id: 0})
        removed = await api.call("DELETE", f"/rooms/{room_id}/members/bob", "alice")
        assert removed.status_code == 200, removed.text
        for i in range(3):
            await api.send(room_id, "alice", f"after removal {i}")
        last = await api.last_seq(room_id, "alice")
        await carol.wait_until(lambda: carol.seqs(room_id)[-1:] == [last])
        await bob.barrier()

    bob_events = bob.room_events(room_id)
    assert bob_events[-1]["type"] == "member.removed"
    assert bob_events[-1]["data"]["user_id"] == "bob"
    assert bob.seqs(room_id) == carol.seqs(room_id)[: len(bob_events)]
    assert bob.seqs(room_id)[-1] == last - 3


# --- frames from the client ---------------------------------------------------------------------------


async def test_send_frame_is_answered_with_send_ok_and_reaches_members(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    alice, bob = await ws(server, api, "alice"), await ws(server, api, "bob")
    async with closing(alice, bob):
        await alice.sync({room_id: room["last_seq"]})
        await bob.send({"type": "send", "room_id": room_id, "content": "over the socket", "client_msg_id": "c1"})
        ok = await bob.wait_for(lambda f: f.get("type") == "send.ok")
        delivered = await alice.wait_for(lambda f: f.get("type") == "message.new")

    assert ok["client_msg_id"] == "c1"
    assert ok["room_id"] == room_id
    assert ok["seq"] == room["last_seq"] + 1
    assert ok["duplicate"] is False
    assert (delivered["seq"], delivered["actor"], delivered["data"]["message_id"], delivered["data"]["content"]) == (
        ok["seq"], "bob", ok["message_id"], "over the socket"
    )


async def test_edits_reactions_and_deletions_arrive_live_and_a_later_catch_up_shows_no_deleted_content(
    server: Serve, api: Api
) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    sent = await api.send(room_id, "alice", "draft", meta={"k": "v"})
    path = f"/rooms/{room_id}/messages/{sent['message_id']}"
    bob = await ws(server, api, "bob")
    async with closing(bob):
        await bob.sync({room_id: room["last_seq"]})
        for method, sub, user, body in [("PATCH", "", "alice", {"content": "final"}),
                                        ("POST", "/reactions", "bob", {"emoji": "👍"}),
                                        ("DELETE", "/reactions/%F0%9F%91%8D", "bob", None),
                                        ("DELETE", "", "alice", None)]:
            response = await api.call(method, path + sub, user, body)
            assert response.status_code == 200, response.text
        last = await api.last_seq(room_id, "bob")
        await bob.wait_until(lambda: bob.seqs(room_id)[-1:] == [last])
        live = bob.room_events(room_id)
    assert [(f["type"], f["seq"]) for f in live] == [
        ("message.new", sent["seq"]), ("message.edited", sent["seq"] + 1), ("reaction.added", sent["seq"] + 2),
        ("reaction.removed", sent["seq"] + 3), ("message.deleted", sent["seq"] + 4),
    ]
    assert live[1]["data"]["content"] == "final"  # live, before the deletion: as written
    later = await ws(server, api, "bob")
    async with closing(later):
        await later.sync({room_id: room["last_seq"]})
        await later.wait_until(lambda: later.seqs(room_id)[-1:] == [last])
        caught_up = later.room_events(room_id)
    assert [f["seq"] for f in caught_up] == [f["seq"] for f in live]
    assert caught_up[0]["data"]["content"] == "" and "meta" not in caught_up[0]["data"]
    assert caught_up[1]["data"]["content"] == ""


async def test_repeated_send_frame_returns_the_first_result_as_duplicate(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    bob = await ws(server, api, "bob")
    async with closing(bob):
        frame = {"type": "send", "room_id": room_id, "content": "once", "client_msg_id": "again"}
        await bob.send(frame)
        await bob.send(frame)
        await bob.wait_until(lambda: bob.count(lambda f: f.get("type") == "send.ok") == 2)
        last = await api.last_seq(room_id, "bob")

    first, second = [f for f in bob.frames if f.get("type") == "send.ok"]
    assert (second["message_id"], second["seq"]) == (first["message_id"], first["seq"])
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert last == first["seq"]


async def test_a_send_frame_reusing_a_client_msg_id_with_another_body_is_an_error(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    bob = await ws(server, api, "bob")
    async with closing(bob):
        frame = {"type": "send", "room_id": room_id, "content": "once", "client_msg_id": "reused"}
        await bob.send(frame)
        await bob.wait_for(lambda f: f.get("type") == "send.ok")
        await bob.send({**frame, "content": "twice"})
        error = await bob.wait_for(lambda f: f.get("type") == "error")
        await bob.send(frame)
        await bob.wait_until(lambda: bob.count(lambda f: f.get("type") == "send.ok") == 2)
        last = await api.last_seq(room_id, "bob")

    assert (error["code"], error["field"], error["client_msg_id"]) == ("IDEMPOTENCY_KEY_REUSED", "client_msg_id",
                                                                        "reused")
    first, replay = [f for f in bob.frames if f.get("type") == "send.ok"]
    assert (replay["message_id"], replay["duplicate"]) == (first["message_id"], True)
    assert last == first["seq"]


SEND_ERRORS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    # case: (sender, send fields beside room_id and client_msg_id, expected field)
    "too long": ("bob", {"content": "x" * 4001}, "content"),
    "not a member": ("carol", {"content": "let me in"}, None),
    "content not a string": ("bob", {"content": 5}, "content"),
    "empty content": ("bob", {"content": "   "}, "content"),
}


@pytest.mark.parametrize("case", list(SEND_ERRORS))
async def test_send_frame_errors_carry_the_rest_code_and_field(server: Serve, api: Api, case: str) -> None:
    sender, fields, field = SEND_ERRORS[case]
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    rest = await api.call("POST", f"/rooms/{room_id}/messages", sender, {**fields, "client_msg_id": "rest"})
    client = await ws(server, api, sender)
    async with closing(client):
        await client.send({"type": "send", "room_id": room_id, "client_msg_id": "sock", **fields})
        error = await client.wait_for(lambda f: f.get("type") == "error")

    assert rest.status_code in (400, 403)
    assert error["code"] == rest.json()["error"]["code"]
    assert error["field"] == rest.json()["error"].get("field") == field
    assert await api.last_seq(room_id, "alice") == room["last_seq"]


@pytest.mark.parametrize("levels", [1_000, 10_000])
async def test_send_frame_with_meta_nested_too_deep_gets_an_error_on_meta_and_the_socket_stays_open(
    server: Serve, api: Api, levels: int
) -> None:
    room = await api.create_room("alice", ["bob"])
    deep = '{"a":' * levels + "1" + "}" * levels
    client = await ws(server, api, "bob")
    async with closing(client):
        await client.ws.send(f'{{"type":"send","room_id":"{room["room_id"]}","client_msg_id":"c","content":"hi",'
                             f'"meta":{deep}}}')
        error = await client.wait_for(lambda f: f.get("type") == "error")
        await client.barrier()
        assert client.close_code is None

    assert (error["code"], error["field"]) == ("VALIDATION_ERROR", "meta")
    assert await api.last_seq(room["room_id"], "alice") == room["last_seq"]


async def test_frame_over_the_body_limit_gets_payload_too_large_and_the_socket_stays_open(
    server: Serve, api: Api
) -> None:
    client = await ws(server, api, "bob")
    async with closing(client):
        await client.ws.send('{"type":"ping","pad":"' + "x" * 70_000 + '"}')
        error = await client.wait_for(lambda f: f.get("type") == "error")
        await client.barrier()

    assert error["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(("frame", "broadcast"), [("ack", "ack.received"), ("read", "read.receipt")])
async def test_ack_and_read_frames_are_broadcast_to_the_other_members(
    server: Serve, api: Api, frame: str, broadcast: str
) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    alice, bob = await ws(server, api, "alice"), await ws(server, api, "bob")
    async with closing(alice, bob):
        await alice.sync({room_id: 0})
        await bob.sync({room_id: 0})
        sent = await api.send(room_id, "alice", "read me")
        await bob.wait_for(lambda f: f.get("seq") == sent["seq"])
        await bob.send({"type": frame, "room_id": room_id, "seq": sent["seq"]})
        received = await alice.wait_for(lambda f: f.get("type") == broadcast)

    assert received == {"type": broadcast, "room_id": room_id, "user_id": "bob", "seq": sent["seq"]}
    assert errors(bob) == []
    view = (await api.call("GET", f"/rooms/{room_id}", "bob")).json()
    receipts = {r["user_id"]: r for r in (await api.call("GET", f"/rooms/{room_id}/receipts", "alice")).json()}
    assert receipts["bob"]["delivered_seq"] == sent["seq"]  # reading implies delivery
    if frame == "read":
        assert (view["read_seq"], view["unread_count"], receipts["bob"]["read_seq"]) == (sent["seq"], 0, sent["seq"])
    else:
        assert (view["read_seq"], view["unread_count"]) == (0, 1)


async def test_typing_reaches_the_other_members_but_not_the_typist(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    alice, bob = await ws(server, api, "alice"), await ws(server, api, "bob")
    async with closing(alice, bob):
        await alice.sync({room_id: 0})
        await bob.sync({room_id: 0})
        await bob.send({"type": "typing.start", "room_id": room_id})
        typing = await alice.wait_for(lambda f: f.get("type") == "typing")
        await bob.barrier()

    assert typing == {"type": "typing", "room_id": room_id, "user_id": "bob", "typing": True, "expires_in_ms": 5000}
    assert bob.count(lambda f: f.get("type") == "typing") == 0


async def test_rest_typing_reaches_websocket_members_as_the_same_frames(server: Serve, api: Api) -> None:
    room = await api.create_room("alice", ["bob"])
    room_id = room["room_id"]
    alice = await ws(server, api, "alice")
    async with closing(alice):
        await alice.sync({room_id: 0})
        assert (await api.call("POST", f"/rooms/{room_id}/typing", "bob", {})).status_code == 200
        started = await alice.wait_for(lambda f: f.get("type") == "typing")
        assert (await api.call("POST", f"/rooms/{room_id}/typing", "bob", {"typing": False})).status_code == 200
        stopped = await alice.wait_for(lambda f: f.get("type") == "typing" and not f["typing"])

    assert started == {"type": "typing", "room_id": room_id, "user_id": "bob", "typing": True, "expires_in_ms": 5000}
    assert stopped["expires_in_ms"] is None


# --- tokens ----------------------------------------------------------------------------------------------


async def refused_status(server: Serve, token: str | None) -> int:
    """The HTTP status of a WebSocket upgrade refused with `token` (fails if it is accepted)."""
    url = ws_url(server.base_url, token or "") if token is not None else server.base_url.replace("http", "ws") + "/ws"
    try:
        async with connect(url, proxy=None, open_timeout=10):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code
    raise AssertionError("the upgrade was accepted")


BAD_TOKENS: dict[str, Callable[[Tenant], str | None]] = {
    "no token": lambda t: None,
    "not a JWT": lambda t: "not-a-token",
    "signed with another key": lambda t: signed("ws", tenant_id=t.tenant_id, user_id="bob", secret="x" * 40),
    "an access token": lambda t: signed("access", tenant_id=t.tenant_id, user_id="bob"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_upgrade_is_refused_with_401(server: Serve, tenant: Tenant, case: str) -> None:
    assert await refused_status(server, BAD_TOKENS[case](tenant)) == 401


async def test_expired_token_upgrade_is_refused_with_401(server: Serve, tenant: Tenant) -> None:
    expired = signed("ws", tenant_id=tenant.tenant_id, user_id="bob", now=lambda: time.time() - 3600)
    fresh = signed("ws", tenant_id=tenant.tenant_id, user_id="bob")
    client = await WsClient.open(server.base_url, fresh)  # the same claims, in date, are accepted
    await client.close()

    assert await refused_status(server, expired) == 401


async def test_ws_token_is_not_accepted_as_an_api_bearer_token(server: Serve, api: Api) -> None:
    token = await api.token("bob")
    response = await api.http.get("/rooms", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"


# --- notifications ----------------------------------------------------------------------------------------


async def test_topic_notification_reaches_only_subscribed_connected_users(server: Serve, api: Api) -> None:
    for user in ("bob", "dave"):
        subscribed = await api.call("POST", "/subscriptions", user, {"topic": "deploys"})
        assert subscribed.status_code == 201, subscribed.text
    bob, carol = await ws(server, api, "bob"), await ws(server, api, "carol")
    async with closing(bob, carol):
        await bob.barrier()
        await carol.barrier()
        created = await api.call("POST", "/notify", "admin", {
            "topic": "deploys", "payload": {"version": "1.2.3"}, "targets": {"topic_subscribers": True},
        })
        assert created.status_code == 201, created.text
        notification = await bob.wait_for(lambda f: f.get("type") == "notification")
        await carol.barrier()
        dave = await ws(server, api, "dave")  # subscribed, but offline when it was sent
        async with closing(dave):
            await dave.barrier()

    assert notification["notification_id"] == created.json()["notification_id"]
    assert (notification["topic"], notification["payload"]) == ("deploys", {"version": "1.2.3"})
    assert carol.count(lambda f: f.get("type") == "notification") == 0
    assert dave.count(lambda f: f.get("type") == "notification") == 0


# --- slow clients and shutdown (servers of their own) -------------------------------------------------------


async def flood(api: Api, room: dict[str, Any], healthy: WsClient, slow: ClientConnection) -> None:
    """Sync both clients from the room's start, then send SLOW_SENDS large events from 8 senders."""
    room_id = room["room_id"]
    await healthy.sync({room_id: room["last_seq"]})
    await slow.send(json.dumps({"type": "sync", "rooms": {room_id: room["last_seq"]}}))

    async def sender(worker: int) -> None:
        for i in range(worker, SLOW_SENDS, 8):
            await api.send(room_id, "alice", f"{i:05d}", meta={"pad": secrets.token_urlsafe(SLOW_PAD)})

    await asyncio.gather(*(sender(w) for w in range(8)))


async def test_slow_client_is_told_to_resync_while_others_keep_receiving(
    tmp_path: Path, database_url: str, nats_url: str, tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                  ROOMLOG_WS_QUEUE_SIZE=str(SLOW_QUEUE_SIZE))
        await wait_live(serve, tenant)
        async with Api(serve.base_url, tenant) as api:
            room = await api.create_room("alice", ["bob", "carol"])
            room_id = room["room_id"]
            carol = await ws(serve, api, "carol")
            # bob reads nothing: a tiny kernel buffer and a one-frame client queue stop the socket at once.
            slow = await connect(ws_url(serve.base_url, await api.token("bob")), proxy=None, max_queue=1,
                                 sock=small_receive_buffer_socket("127.0.0.1", serve.port))
            async with closing(carol):
                await flood(api, room, carol, slow)
                last = await api.last_seq(room_id, "alice")
                await carol.wait_until(lambda: carol.seqs(room_id)[-1:] == [last])
                slow_frames = []
                with contextlib.suppress(ConnectionClosed):
                    async with asyncio.timeout(30):
                        async for raw in slow:
                            slow_frames.append(json.loads(raw))
                resyncs = await metric_total(serve, "roomlog_websocket_resyncs_total")

    assert carol.seqs(room_id) == list(range(room["last_seq"] + 1, last + 1))
    assert slow.close_code == 4008
    assert resyncs == 1
    assert slow_frames[-1]["type"] == "resync"
    seqs = [f["seq"] for f in slow_frames if f.get("room_id") == room_id and "seq" in f]
    # Told to resync before the end, and what did arrive has no gap: the client resumes from there.
    assert seqs == list(range(room["last_seq"] + 1, seqs[-1] + 1))
    assert slow_frames[-1]["rooms"] == {room_id: seqs[-1]}


async def metric_total(serve: Serve, name: str) -> float:
    """The sum of the server's samples named `name` in its /metrics."""
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as web:
        text = (await web.get("/metrics")).text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples if s.name == name)


def server_holds(server_port: int, client_port: int) -> bool:
    """Whether the kernel still has the server's end of the TCP connection from `client_port`."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                local, remote = line.split()[1:3]
                if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
                    return True
    return False


async def seconds_held(server_port: int, client_port: int, *, since: float) -> float:
    """Poll until the server dropped the connection (at most STALL_BOUND after `since`); seconds since `since`."""
    deadline = since + STALL_BOUND
    while server_holds(server_port, client_port) and time.monotonic() < deadline:  # noqa: ASYNC110 - kernel state
        await asyncio.sleep(0.1)
    return time.monotonic() - since


async def test_client_that_never_reads_is_dropped_within_the_send_timeout_while_others_get_every_event(
    tmp_path: Path, database_url: str, nats_url: str, tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                  ROOMLOG_WS_QUEUE_SIZE=str(SLOW_QUEUE_SIZE),
                                  ROOMLOG_WS_SEND_TIMEOUT_SECONDS=str(STALL_SEND_TIMEOUT))
        await wait_live(serve, tenant)
        async with Api(serve.base_url, tenant) as api:
            room = await api.create_room("alice", ["bob", "carol"])
            room_id = room["room_id"]
            carol = await ws(serve, api, "carol")
            sock = small_receive_buffer_socket("127.0.0.1", serve.port)
            slow = await connect(ws_url(serve.base_url, await api.token("bob")), proxy=None, max_queue=1, sock=sock)
            client_port = sock.getsockname()[1]
            async with closing(carol):
                await flood(api, room, carol, slow)
                sent_at = time.monotonic()
                last = await api.last_seq(room_id, "alice")
                await carol.wait_until(lambda: carol.seqs(room_id)[-1:] == [last])
                # bob still reads nothing: the server must let go of him by itself.
                held_for = await seconds_held(serve.port, client_port, since=sent_at)
                drops = await metric_total(serve, "roomlog_websocket_slow_client_drops_total")
                await slow.close()

    assert carol.seqs(room_id) == list(range(room["last_seq"] + 1, last + 1))
    assert held_for < STALL_BOUND, f"the server still held the unread socket {held_for:.1f}s after the last send"
    assert drops == 1


async def test_revoked_session_closes_its_open_websocket_with_4001(
    tmp_path: Path, database_url: str, nats_url: str
) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                  ROOMLOG_WS_RECHECK_SECONDS=str(RECHECK_SECONDS))
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as web:
            signed_up = await web.post("/auth/signup", json={
                "email": f"ws-{uuid.uuid4().hex[:12]}@example.com", "password": "correct horse battery",
                "display_name": "W",
            })
            assert signed_up.status_code == 201, signed_up.text
            auth = {"Authorization": f"Bearer {signed_up.json()['access_token']}"}
            token = (await web.post("/tokens", headers=auth)).json()["token"]
            client = await WsClient.open(serve.base_url, token)
            async with closing(client):
                await client.barrier()
                out = await web.post("/auth/logout", headers=auth)
                assert out.status_code in (200, 204), out.text
                logged_out = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await client.wait_closed(seconds=RECHECK_SECONDS * 10)
                closed_after = time.monotonic() - logged_out

    assert client.close_code == 4001, f"still open {closed_after:.1f}s after logout ({client.close_code})"
    assert client.frames[-1]["code"] == "AUTHENTICATION_ERROR"


async def test_sigterm_sends_server_shutdown_to_connected_clients(
    tmp_path: Path, database_url: str, nats_url: str, tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=database_url, nats_url=nats_url)
        async with Api(serve.base_url, tenant) as api:
            room = await api.create_room("alice", ["bob"])
            bob = await ws(serve, api, "bob")
            async with closing(bob):
                await bob.sync({room["room_id"]: 0})
                await serve.signal_and_wait(signal.SIGTERM)
                close_code = await bob.wait_closed()

    shutdown = [f for f in bob.frames if f.get("type") == "server.shutdown"]
    assert len(shutdown) == 1, f"closed with {close_code} after {bob.frames[-2:]}"
    assert shutdown[0]["reconnect_after_ms"] > 0
    assert close_code == 4009


# --- many clients syncing the same rooms at once ------------------------------------------------------------

STORM_USERS = 10
STORM_ROOMS = 30


async def test_clients_syncing_the_same_rooms_at_once_all_receive_messages_sent_meanwhile(
    server: Serve, api: Api
) -> None:
    users = [f"s{i}" for i in range(STORM_USERS)]
    rooms = [(await api.create_room(users[0], users[1:]))["room_id"] for _ in range(STORM_ROOMS)]
    clients = [await ws(server, api, user) for user in users]
    async with closing(*clients):
        # A reconnect storm: everyone syncs every room at once while each room gets a message.
        await asyncio.gather(*(c.send({"type": "sync", "rooms": dict.fromkeys(rooms, 0)}) for c in clients))
        sent = await asyncio.gather(*(api.send(room_id, users[0], "meanwhile") for room_id in rooms))
        last = {room_id: s["seq"] for room_id, s in zip(rooms, sent, strict=True)}
        for client in clients:
            with contextlib.suppress(AssertionError):
                await client.wait_until(reached(client, last), seconds=5)

    missing = {(u, r) for u, c in zip(users, clients, strict=True) for r in rooms if c.seqs(r)[-1:] != [last[r]]}
    assert not missing, f"{len(missing)} (client, room) pairs never got the message sent during the sync"
    assert all(c.seqs(r) == list(range(1, last[r] + 1)) for c in clients for r in rooms)
