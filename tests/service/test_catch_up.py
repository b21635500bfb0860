"""service/realtime/catch_up.py: catch-up frames built from the stored JSON equal the frames of the decoded events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from eventstore.read import read_stream
from projections.messages import redact_deleted
from projections.replay import ALL_PROJECTIONS, replay
from schemas.upcasting import registered
from service.cli.transfer import import_file
from service.realtime.catch_up import FramePage, read_frames
from service.realtime.frames import encode_event_frame
from tests.conftest import Tenant, create_database
from tests.projections.test_upcasting import body_to_content
from tests.service.test_inbox import send
from tests.service.test_rooms import create_room

FIXTURES = Path(__file__).parents[1] / "projections" / "fixtures"
FIXTURE_ROOM = "room_fixture_upcasting_1"


async def python_frames(pool: asyncpg.Pool, room_id: str, *, now: datetime) -> list[dict[str, Any]]:
    """The room's frames the way live delivery builds them: decode, upcast, redact, encode each event."""
    events = await redact_deleted(pool, await read_stream(pool, room_id, limit=10_000), now=now)
    return [msgspec.json.decode(encode_event_frame(e)) for e in events]


def decoded(page: FramePage) -> list[dict[str, Any]]:
    frames = [msgspec.json.decode(page.frame(i)) for i in range(len(page))]
    assert msgspec.json.decode(f"[{page.joined(0, len(page))}]") == frames  # the joined text holds them all
    return frames


async def test_frames_from_stored_json_equal_decoded_ones_for_every_kind_of_room_event(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room = await create_room(client, tenant, "alice", ["bob", "carol"], settings={"message_retention_days": 2})
    room_id = room["room_id"]
    first = await send(client, tenant, room_id, "alice", "hello", meta={"n": 1.5, "deep": {"é": [1, None]}})
    await send(client, tenant, room_id, "bob", "a reply", thread_id=first["message_id"], mentions=["alice"])
    gone = await send(client, tenant, room_id, "bob", "gone soon", meta={"secret": True})
    edited = await send(client, tenant, room_id, "carol", "typo")
    for user, method, path, body in [
        ("carol", "PATCH", f"/rooms/{room_id}/messages/{edited['message_id']}", {"content": "fixed"}),
        ("bob", "PATCH", f"/rooms/{room_id}/messages/{gone['message_id']}", {"content": "still gone soon"}),
        ("alice", "POST", f"/rooms/{room_id}/messages/{first['message_id']}/reactions/toggle", {"emoji": "👍"}),
        ("bob", "DELETE", f"/rooms/{room_id}/messages/{gone['message_id']}", None),
        ("alice", "PATCH", f"/rooms/{room_id}", {"name": "renamed"}),
        ("alice", "DELETE", f"/rooms/{room_id}/members/bob", None),
    ]:
        response = await client.request(method, path, json=body, headers=tenant.as_user(user))
        assert response.status_code in (200, 201), response.text
    now = datetime.now(UTC)

    for at in (now, now + timedelta(days=3)):  # then every message is past the room's retention
        expected = await python_frames(pool, room_id, now=at)
        frames = await read_frames(pool, room_id, after_seq=0, limit=1000, user_id="bob", now=at)
        assert decoded(frames) == expected
        assert frames.seqs == list(range(1, len(expected) + 1))
        assert [seq for seq, removed in zip(frames.seqs, frames.removed, strict=True) if removed] == [
            expected[-1]["seq"]]  # bob's removal, for bob only
    assert not any((await read_frames(pool, room_id, after_seq=0, limit=1000, user_id="carol", now=now)).removed)
    types = {e["type"] for e in expected}
    assert {"message.new", "message.edited", "message.deleted", "member.removed", "room.updated"} <= types
    assert {e["data"]["content"] for e in expected if e["type"] == "message.new"} == {""}  # retention
    page = await read_frames(pool, room_id, after_seq=3, limit=4, user_id="bob", now=now)
    assert decoded(page) == (await python_frames(pool, room_id, now=now))[3:7]
    assert len(await read_frames(pool, room_id, after_seq=len(expected), limit=10, user_id="bob", now=now)) == 0


@pytest.fixture
def message_sent_v2() -> Iterator[None]:
    with registered("message.sent", {1: body_to_content}):
        yield


async def _fixture_frames(server_url: str, fixture: str) -> tuple[FramePage, list[dict[str, Any]]]:
    url = await create_database(server_url, "roomlog_catch_up")
    await import_file(url, str(FIXTURES / fixture))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        await replay(pool, ALL_PROJECTIONS)
        now = datetime.now(UTC)
        return (await read_frames(pool, FIXTURE_ROOM, after_seq=0, limit=1000, user_id="bob", now=now),
                await python_frames(pool, FIXTURE_ROOM, now=now))
    finally:
        await pool.close()


async def test_events_of_an_old_version_are_upcast_among_raw_ones_in_seq_order(
    pg_server_url: str, message_sent_v2: None
) -> None:
    old, old_expected = await _fixture_frames(pg_server_url, "upcasting_v1.jsonl")
    current, current_expected = await _fixture_frames(pg_server_url, "upcasting_current.jsonl")
    assert decoded(old) == old_expected == current_expected == decoded(current)
    contents = [e["data"].get("content") for e in decoded(old) if e["type"] == "message.new"]
    assert "hello from the old days" in contents and all("body" not in e["data"] for e in decoded(old))
