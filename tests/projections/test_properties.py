"""Properties over generated histories: seqs stay gapless under any interleaving, and replay reproduces any history.

Each example works in a tenant of its own; the examples share the session's database and runtime.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from eventstore.append import AppendResult
from projections.guards import MemberOf
from projections.inline import INLINE_PROJECTIONS
from projections.replay import projection_by_name, replay
from schemas.api import CreateRoom, SendMessage
from schemas.errors import NotAMember
from schemas.events import EventMetadata
from service.domain.messages import decide_send, send_idempotency_key
from service.domain.rooms import Actor, decide_create
from service.identity.ids import new_id
from service.runtime import Runtime
from tests.conftest import make_tenant

PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
USERS = ("u0", "u1", "u2", "u3")
LIVE_TABLES = tuple(table for projection in INLINE_PROJECTIONS for table in projection.tables)


# --- concurrent sends ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    room: int
    sender: int  # u0 (admin), u1, u2 (members) or u3, who is not in the room and must be refused
    client_msg_id: str | None  # a repeated one models a client retry


@st.composite
def send_plans(draw: st.DrawFn) -> tuple[int, list[list[Send]]]:
    """A number of rooms and sends over them, cut into groups that are fired concurrently."""
    rooms = draw(st.integers(1, 4))
    sends = draw(st.lists(
        st.builds(Send, st.integers(0, rooms - 1), st.integers(0, 3), st.none() | st.sampled_from("abcde")),
        min_size=1, max_size=40,
    ))
    groups: list[list[Send]] = []
    while sends:
        size = draw(st.integers(1, 15))
        groups.append(sends[:size])
        sends = sends[size:]
    return rooms, groups


@PROPERTY_SETTINGS
@given(plan=send_plans())
async def test_concurrent_sends_leave_gapless_seqs_and_one_message_per_client_msg_id(
    runtime: Runtime, plan: tuple[int, list[list[Send]]]
) -> None:
    n_rooms, groups = plan
    tenant_id = new_id("tn")
    appender, pool = runtime.appender, runtime.pool
    rooms = []
    for _ in range(n_rooms):
        room_id = new_id("room")
        events, _ = decide_create(Actor("u0", "member"), CreateRoom(type="group", members=["u1", "u2"]), room_id)
        await appender.append(room_id, events, tenant_id=tenant_id, metadata=EventMetadata(tenant_id, "u0"),
                              expected_seq=0, create_stream=True)
        rooms.append(room_id)

    async def send(op: Send) -> tuple[Send, AppendResult | BaseException]:
        sender, room_id = USERS[op.sender], rooms[op.room]
        event = decide_send(sender, SendMessage(content="hello", client_msg_id=op.client_msg_id), new_id("msg"))
        try:
            result = await appender.append(
                room_id, [event], tenant_id=tenant_id, metadata=EventMetadata(tenant_id, sender),
                idempotency_key=send_idempotency_key(sender, op.client_msg_id),
                guard=MemberOf(tenant_id, room_id, sender),
            )
        except NotAMember as exc:
            return op, exc
        return op, result

    results = [r for group in groups for r in await asyncio.gather(*(send(op) for op in group))]
    for op, outcome in results:
        assert isinstance(outcome, NotAMember if op.sender == 3 else AppendResult), (op, outcome)

    for index, room_id in enumerate(rooms):
        ops = [op for group in groups for op in group if op.room == index and op.sender != 3]
        last_seq = await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", room_id)
        seqs = [r["seq"] for r in await pool.fetch(
            "SELECT seq FROM events WHERE stream_id = $1 ORDER BY seq", room_id)]
        assert seqs == list(range(1, last_seq + 1))
        rows = await pool.fetch("SELECT sender_id, client_msg_id FROM messages WHERE room_id = $1", room_id)
        keyed = Counter((r["sender_id"], r["client_msg_id"]) for r in rows if r["client_msg_id"] is not None)
        expected = {(USERS[op.sender], op.client_msg_id) for op in ops if op.client_msg_id is not None}
        assert set(keyed) == expected
        assert all(count == 1 for count in keyed.values())
        assert sum(r["client_msg_id"] is None for r in rows) == sum(op.client_msg_id is None for op in ops)
        assert last_seq == 4 + len(rows)  # room.created + three member.joined, then one seq per message

    first: dict[tuple[int, int, str], tuple[int, int]] = {}
    for op, result in results:
        if op.client_msg_id is None or not isinstance(result, AppendResult):
            continue
        got = (result.events[0].seq, result.events[0].position)
        assert first.setdefault((op.room, op.sender, op.client_msg_id), got) == got


# --- replay of any history -----------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str
    actor: int
    room: int = 0
    other: int = 0
    number: int = 0
    text: str | None = None


# u0 creates the first room (with u1 and u2), so it is the admin there: lean on it to get past the rules.
_actors = st.sampled_from((0, 0, 0, 1, 2, 3))
_ops = st.one_of(
    st.builds(Op, st.just("create"), _actors, other=st.integers(0, 3), number=st.integers(0, 2)),
    st.builds(Op, st.just("rename"), _actors, st.integers(0, 5), text=st.none() | st.text(max_size=5)),
    st.builds(Op, st.just("add"), _actors, st.integers(0, 5), st.integers(0, 3)),
    st.builds(Op, st.just("remove"), _actors, st.integers(0, 5), st.integers(0, 3)),
    st.builds(Op, st.just("send"), _actors, st.integers(0, 5), text=st.none() | st.sampled_from("xyz")),
    st.builds(Op, st.just("ack"), _actors, st.integers(0, 5), number=st.integers(0, 8)),
    # A send that mentions a user (u3 may not be a member: a 400) or the room; a read position.
    st.builds(Op, st.just("mention"), _actors, st.integers(0, 5), st.integers(0, 4)),
    st.builds(Op, st.just("read"), _actors, st.integers(0, 5), number=st.integers(0, 8)),
    # Changes to the `number`-th message sent so far (edits: of the actor's own), racing each other in a group.
    st.builds(Op, st.just("edit"), _actors, number=st.integers(0, 9), text=st.sampled_from("pq")),
    st.builds(Op, st.just("delete"), _actors, number=st.integers(0, 9)),
    st.builds(Op, st.just("react"), _actors, number=st.integers(0, 9), text=st.sampled_from("ab")),
    st.builds(Op, st.just("unreact"), _actors, number=st.integers(0, 9), text=st.sampled_from("ab")),
    st.builds(Op, st.just("reply"), _actors, number=st.integers(0, 9)),
)
histories = st.lists(st.lists(_ops, min_size=1, max_size=4), min_size=1, max_size=8)

_ROOM_TYPES = ("group", "channel", "dm")


@dataclass(frozen=True)
class Sent:
    room_id: str
    message_id: str
    sender: str


async def _run(
    client: httpx.AsyncClient, headers: dict[str, dict[str, str]], rooms: list[str], sent: list[Sent], op: Op
) -> int:
    """Send one operation through the API; returns the HTTP status."""
    user = USERS[op.actor]
    h = headers[user]
    if op.kind in ("edit", "delete", "react", "unreact", "reply"):
        candidates = [m for m in sent if m.sender == user] if op.kind == "edit" else sent
        if not candidates:
            return 200
        message = candidates[op.number % len(candidates)]
        path = f"/rooms/{message.room_id}/messages/{message.message_id}"
        if op.kind == "edit":
            response = await client.patch(path, json={"content": op.text}, headers=h)
        elif op.kind == "delete":
            response = await client.delete(path, headers=h)
        elif op.kind == "reply":
            response = await client.post(f"/rooms/{message.room_id}/messages",
                                         json={"content": "r", "thread_id": message.message_id}, headers=h)
        elif op.kind == "react":
            response = await client.post(f"{path}/reactions", json={"emoji": op.text}, headers=h)
        else:
            response = await client.delete(f"{path}/reactions/{op.text}", headers=h)
        return response.status_code
    if op.kind == "create":
        body = {"type": _ROOM_TYPES[op.number], "members": [USERS[op.other]], "name": f"r{len(rooms)}"}
        response = await client.post("/rooms", json=body, headers=h)
        if response.status_code == 201:
            rooms.append(response.json()["room_id"])
        return response.status_code
    room = rooms[op.room % len(rooms)]
    if op.kind == "rename":
        response = await client.patch(f"/rooms/{room}", json={"name": op.text}, headers=h)
    elif op.kind == "add":
        response = await client.post(f"/rooms/{room}/members", json={"user_ids": [USERS[op.other]]}, headers=h)
    elif op.kind == "remove":
        response = await client.delete(f"/rooms/{room}/members/{USERS[op.other]}", headers=h)
    elif op.kind == "send":
        response = await client.post(f"/rooms/{room}/messages", json={"content": "m", "client_msg_id": op.text},
                                     headers=h)
        if response.status_code == 201:
            sent.append(Sent(room, response.json()["message_id"], user))
    elif op.kind == "mention":
        mentions = [USERS[op.other] if op.other < len(USERS) else "@room"]
        response = await client.post(f"/rooms/{room}/messages", json={"content": "m", "mentions": mentions},
                                     headers=h)
        if response.status_code == 201:
            sent.append(Sent(room, response.json()["message_id"], user))
    elif op.kind == "read":
        response = await client.post(f"/rooms/{room}/read", json={"seq": op.number}, headers=h)
    else:
        response = await client.post("/acks", json={"room_id": room, "seq": op.number}, headers=h)
    return response.status_code


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
async def test_replay_of_any_history_matches_the_live_tables(
    app: Starlette, runtime: Runtime, database_url: str, history: list[list[Op]]
) -> None:
    tenant = await make_tenant(database_url)
    headers = {u: tenant.as_user(u) for u in USERS}
    rooms: list[str] = []
    sent: list[Sent] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roomlog.test") as client:
        first = await client.post("/rooms", json={"type": "group", "members": ["u1", "u2"]}, headers=headers["u0"])
        rooms.append(first.json()["room_id"])
        for group in history:  # each group runs concurrently, the groups one after another
            statuses = await asyncio.gather(*(_run(client, headers, rooms, sent, op) for op in group))
            assert all(status < 500 for status in statuses), statuses
    report = await replay(runtime.pool, verify=True)
    assert report.differences == {table: 0 for table in LIVE_TABLES}


# --- racing changes to messages ------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str  # edit, delete, react or unreact
    actor: int  # u0 (room admin), u1 or u2; edits by anyone but the sender are refused
    message: int
    text: str


_changes = st.builds(Change, st.sampled_from(("edit", "edit", "delete", "react", "unreact")), st.integers(0, 2),
                     st.integers(0, 1), st.sampled_from("ab"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=st.lists(st.lists(_changes, min_size=2, max_size=12), min_size=1, max_size=3))
async def test_racing_changes_record_one_deletion_and_nothing_after_it(
    app: Starlette, runtime: Runtime, database_url: str, groups: list[list[Change]]
) -> None:
    tenant = await make_tenant(database_url)
    headers = {u: tenant.as_user(u) for u in USERS}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roomlog.test") as client:
        room = (await client.post("/rooms", json={"type": "group", "members": ["u1", "u2"]},
                                  headers=headers["u0"])).json()["room_id"]
        ids = [(await client.post(f"/rooms/{room}/messages", json={"content": "m"}, headers=headers[u])).json()
               ["message_id"] for u in ("u1", "u2")]

        async def change(op: Change) -> tuple[Change, httpx.Response]:
            path, h = f"/rooms/{room}/messages/{ids[op.message]}", headers[USERS[op.actor]]
            if op.kind == "edit":
                return op, await client.patch(path, json={"content": op.text}, headers=h)
            if op.kind == "delete":
                return op, await client.delete(path, headers=h)
            if op.kind == "react":
                return op, await client.post(f"{path}/reactions", json={"emoji": op.text}, headers=h)
            return op, await client.delete(f"{path}/reactions/{op.text}", headers=h)

        answers = [a for group in groups for a in await asyncio.gather(*(change(op) for op in group))]
    assert all(response.status_code < 500 for _, response in answers), [r.text for _, r in answers]

    log = await runtime.pool.fetch("SELECT seq, type, data->>'message_id' AS message_id FROM events "
                                   "WHERE stream_id = $1 ORDER BY seq", room)
    assert [row["seq"] for row in log] == list(range(1, len(log) + 1))
    for index, message_id in enumerate(ids):
        about = [(row["seq"], row["type"]) for row in log
                 if row["message_id"] == message_id and row["type"] != "message.sent"]
        deletions = [seq for seq, kind in about if kind == "message.deleted"]
        assert len(deletions) <= 1, about
        if deletions:
            assert about[-1] == (deletions[0], "message.deleted"), about  # nothing after the deletion
        for op, response in answers:
            if op.message != index or response.status_code != 200 or response.json().get("seq") is None:
                continue
            if op.kind == "delete":
                assert response.json()["seq"] == deletions[0]
            else:
                assert not deletions or response.json()["seq"] < deletions[0]
    report = await replay(runtime.pool, [projection_by_name("messages")], verify=True, swap=False)
    assert report.differences == {"messages": 0, "reactions": 0, "room_activity": 0, "message_counts": 0,
                                  "read_marks": 0}
