"""Upcasting (schemas/upcasting.py): a log written with an older event version replays to the same read models
as its upcast equivalent, and every read of the log hands out the current shape.

No event type of roomlog has a second version yet, so the tests register one: `message.sent` version 1 kept
its text in `body`, version 2 (today's struct) in `content`. The fixture logs in tests/projections/fixtures/
are export files: `upcasting_v1.jsonl` stores the three messages as version 1, `upcasting_current.jsonl` is
the same log written as version 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from eventstore.relay import encode_for_nats
from projections.replay import ALL_PROJECTIONS, replay
from schemas.events import MessageSent, decode_event, encode_event
from schemas.upcasting import Payload, registered, upcast_json
from service.cli.transfer import import_file
from tests.conftest import create_database

FIXTURES = Path(__file__).parent / "fixtures"
TENANT = "tn_fixture_upcasting"
READ_MODELS = ("rooms", "members", "messages", "receipts", "message_search")


def body_to_content(payload: Payload) -> Payload:
    """message.sent 1 -> 2: the text moved from `body` to `content`."""
    payload["content"] = payload.pop("body")
    return payload


@pytest.fixture
def message_sent_v2() -> Iterator[None]:
    with registered("message.sent", {1: body_to_content}):
        yield


async def _imported_read_models(server_url: str, fixture: str) -> dict[str, list[tuple[Any, ...]]]:
    """Import a fixture log into a fresh database, replay it there (verified), and return its read models."""
    url = await create_database(server_url, "roomlog_upcast")
    await import_file(url, str(FIXTURES / fixture))
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        report = await replay(pool, ALL_PROJECTIONS, verify=True)
        assert set(report.differences.values()) == {0}, report.differences
        return {
            table: [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} AS t ORDER BY t::text")]
            for table in READ_MODELS
        }
    finally:
        await pool.close()


async def test_an_old_version_log_replays_to_the_read_models_of_its_upcast_equivalent(
    pg_server_url: str, message_sent_v2: None
) -> None:
    old = await _imported_read_models(pg_server_url, "upcasting_v1.jsonl")
    current = await _imported_read_models(pg_server_url, "upcasting_current.jsonl")
    assert old == current
    contents = sorted(str(row[5]) for row in old["messages"])
    assert contents == ["", "hello, edited", "searchable words"]  # the reply was deleted
    assert len(old["message_search"]) == 3


def test_reads_of_the_log_see_the_current_shape(message_sent_v2: None) -> None:
    stored = b'{"type":"message.sent","message_id":"m1","sender_id":"alice","body":"old words","v":1}'
    event = decode_event(stored)
    assert isinstance(event, MessageSent) and event.content == "old words"
    assert msgspec.json.decode(upcast_json(stored))["content"] == "old words"
    row = {"position": 1, "stream_id": "room_x", "seq": 1, "tenant_id": "tn", "created_at": "2025-01-01T00:00:00Z",
           "data": stored.decode(), "metadata": '{"tenant_id":"tn"}'}
    wire = msgspec.json.decode(encode_for_nats(row))  # type: ignore[arg-type]
    assert wire["event"]["content"] == "old words" and "body" not in wire["event"]


def test_new_events_are_stored_with_the_current_version(message_sent_v2: None) -> None:
    text = encode_event(MessageSent(message_id="m1", sender_id="alice", content="new"))
    assert msgspec.json.decode(text)["v"] == 2
    assert upcast_json(text) == text  # current: passed through untouched


def test_without_newer_versions_stored_json_passes_through_and_carries_no_version() -> None:
    text = encode_event(MessageSent(message_id="m1", sender_id="alice", content="x"))
    assert "\"v\"" not in text and upcast_json(text) is text
