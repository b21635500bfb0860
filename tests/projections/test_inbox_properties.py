"""The inbox against a brute-force recomputation from the log, over generated histories of sends (with
mentions), deletions, reads, mutes, archives, deletes-for-me, retention runs and deletes-for-everyone; and replay
reproduces its read models exactly.

Each example works in a tenant of its own; the examples share the session's database and runtime.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from projections.inbox import PREVIEW_CHARS
from projections.replay import projection_by_name, replay
from schemas.api import ROOM_MENTIONS
from service.commands.retention import RetentionJob
from service.runtime import Runtime
from tests.conftest import make_tenant

USERS = ("u0", "u1", "u2")


@dataclass(frozen=True)
class Op:
    kind: str
    actor: int
    room: int
    number: int = 0
    mentions: tuple[str, ...] = ()


_mentions = st.lists(st.sampled_from((*USERS, *ROOM_MENTIONS)), max_size=2, unique=True).map(tuple)
_ops = st.one_of(
    st.builds(Op, st.just("send"), st.integers(0, 2), st.integers(0, 2), mentions=_mentions),
    st.builds(Op, st.just("send"), st.integers(0, 2), st.integers(0, 2)),
    st.builds(Op, st.just("delete"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 9)),
    st.builds(Op, st.just("read"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 20)),
    st.builds(Op, st.sampled_from(("mute", "unmute", "archive", "unarchive", "clear", "retention", "retention",
                                   "end")), st.integers(0, 2), st.integers(0, 2)),
)
histories = st.lists(st.lists(_ops, min_size=1, max_size=4), min_size=1, max_size=8)


# The group room keeps messages one day: a retention run "two days later" redacts everything sent to it so far.
RETENTION_DAYS = 1


async def _run(client: httpx.AsyncClient, headers: dict[str, dict[str, str]], rooms: list[str],
               sent: dict[str, list[str]], op: Op, job: RetentionJob) -> int:
    room, h = rooms[op.room], headers[USERS[op.actor]]
    if op.kind == "retention":
        await job.run_until_done(now=datetime.now(UTC) + timedelta(days=2 * RETENTION_DAYS))
        return 200
    if op.kind == "end":
        response = await client.delete(f"/rooms/{room}?scope=for_everyone", headers=h)
        return response.status_code
    if op.kind == "send":
        response = await client.post(f"/rooms/{room}/messages",
                                     json={"content": f"m{op.number}", "mentions": list(op.mentions)}, headers=h)
        if response.status_code == 201:
            sent[room].append(response.json()["message_id"])
    elif op.kind == "delete":
        if not sent[room]:
            return 200
        message = sent[room][op.number % len(sent[room])]
        response = await client.delete(f"/rooms/{room}/messages/{message}", headers=h)
    elif op.kind == "read":
        last = (await client.get(f"/rooms/{room}", headers=h)).json().get("last_seq", 0)
        response = await client.post(f"/rooms/{room}/read", json={"seq": min(op.number, last)}, headers=h)
    elif op.kind == "clear":
        response = await client.delete(f"/rooms/{room}?scope=for_me", headers=h)
    else:
        path = "mute" if op.kind.endswith("mute") else "archive"
        method = "DELETE" if op.kind.startswith("un") else "POST"
        response = await client.request(method, f"/rooms/{room}/{path}", headers=h)
    return response.status_code


async def brute_force_inbox(runtime: Runtime, tenant_id: str, user: str) -> list[dict[str, Any]]:
    """What each room of the user's inbox must say, recomputed from the log alone, newest activity first."""
    log = await runtime.pool.fetch(
        "SELECT stream_id, seq, type, data::text AS data, created_at FROM events WHERE tenant_id = $1"
        " ORDER BY position",
        tenant_id,
    )
    rooms: dict[str, dict[str, Any]] = {}
    own = f"user:{tenant_id}:{user}"
    state: dict[str, dict[str, Any]] = {}
    for row in log:
        data = json.loads(row["data"])
        if row["type"] == "room.created":
            rooms[row["stream_id"]] = {"created_at": row["created_at"], "members": set(), "sent": [], "deleted": set(),
                                       "ended": False}
        elif row["type"] == "room.deleted":
            rooms[row["stream_id"]]["ended"] = True
        elif row["type"] == "member.joined":
            rooms[row["stream_id"]]["members"].add(data["user_id"])
        elif row["type"] == "message.sent":
            rooms[row["stream_id"]]["sent"].append((row["seq"], data, row["created_at"]))
        elif row["type"] == "message.deleted":
            rooms[row["stream_id"]]["deleted"].add(data["message_id"])
        elif row["stream_id"] == own:
            mine = state.setdefault(data["room_id"], {"read": 0, "muted": False, "archived": None, "cleared": 0})
            if row["type"] in ("read.recorded", "room.cleared"):
                mine["read"] = max(mine["read"], data["seq"])
            if row["type"] == "room.cleared":
                mine["cleared"] = max(mine["cleared"], data["seq"])
            elif row["type"] in ("room.muted", "room.unmuted"):
                mine["muted"] = row["type"] == "room.muted"
            elif row["type"] == "room.archived":
                mine["archived"] = data["seq"]
            elif row["type"] == "room.unarchived":
                mine["archived"] = None
    expected: list[tuple[datetime, str, dict[str, Any]]] = []
    for room_id, room in rooms.items():
        if user not in room["members"] or room["ended"]:
            continue
        mine = state.get(room_id, {"read": 0, "muted": False, "archived": None, "cleared": 0})
        after = [(seq, d) for seq, d, _ in room["sent"]
                 if seq > mine["read"] and d["sender_id"] != user and d["message_id"] not in room["deleted"]]
        last = room["sent"][-1] if room["sent"] else None
        if mine["cleared"] and (last[0] if last else 0) <= mine["cleared"]:
            continue  # cleared for the user, and nothing new since
        last_message = None if last is None else {
            "message_id": last[1]["message_id"], "seq": last[0], "sender_id": last[1]["sender_id"],
            "preview": "" if last[1]["message_id"] in room["deleted"] else last[1]["content"][:PREVIEW_CHARS],
            "deleted": last[1]["message_id"] in room["deleted"],
        }
        archived = mine["archived"] is not None and (mine["muted"] or (last[0] if last else 0) <= mine["archived"])
        expected.append((last[2] if last else room["created_at"], room_id, {
            "room_id": room_id, "read_seq": mine["read"], "unread_count": len(after),
            "mention_count": sum(bool({user, *ROOM_MENTIONS} & set(d.get("mentions", []))) for _, d in after),
            "last_message": last_message, "is_muted": mine["muted"], "is_archived": archived,
        }))
    return [item for _, _, item in sorted(expected, key=lambda e: (e[0], e[1]), reverse=True)]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
async def test_inbox_equals_a_recomputation_from_the_log_and_replays_identically(
    app: Starlette, runtime: Runtime, database_url: str, history: list[list[Op]]
) -> None:
    tenant = await make_tenant(database_url)
    headers = {u: tenant.as_user(u) for u in USERS}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roomlog.test") as client:
        rooms = []
        retained = {"type": "group", "members": ["u1", "u2"], "settings": {"message_retention_days": RETENTION_DAYS}}
        for body in (retained, {"type": "dm", "members": ["u1"]},
                     {"type": "channel", "members": ["u2"]}):
            rooms.append((await client.post("/rooms", json=body, headers=headers["u0"])).json()["room_id"])
        sent: dict[str, list[str]] = {r: [] for r in rooms}
        job = RetentionJob(runtime.pool, runtime.appender, clock=lambda: datetime.now(UTC))
        for group in history:  # each group runs concurrently, the groups one after another
            statuses = await asyncio.gather(*(_run(client, headers, rooms, sent, op, job) for op in group))
            assert all(status < 500 for status in statuses), statuses
        for user in USERS:
            listed = []
            for archived in ("false", "true"):
                response = await client.get(f"/rooms?archived={archived}&limit=100", headers=headers[user])
                listed += response.json()
            keys = ("room_id", "read_seq", "unread_count", "mention_count", "last_message", "is_muted", "is_archived")
            got = [{k: r[k] for k in keys} for r in listed]
            expected = await brute_force_inbox(runtime, tenant.tenant_id, user)
            # Each filtered list keeps the order of activity; together they are the whole inbox.
            assert sorted(got, key=lambda r: r["room_id"]) == sorted(expected, key=lambda r: r["room_id"]), user
            for archived_flag in (False, True):
                assert [r["room_id"] for r in got if r["is_archived"] is archived_flag] == \
                    [r["room_id"] for r in expected if r["is_archived"] is archived_flag], user
    names = ("rooms", "messages", "mentions", "receipts", "user_rooms")
    report = await replay(runtime.pool, [projection_by_name(n) for n in names], verify=True, swap=False)
    assert set(report.differences.values()) == {0}
