"""`roomlog export` / `roomlog import` (service/cli/transfer.py, eventstore/transfer.py): a tenant's log moved
between databases keeps every seq, id and timestamp, rebuilds its read models, and refuses a bad file whole.

The source is the session's database (other tenants' events interleave); the targets are fresh databases
on the same server, one of them already holding another tenant.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from projections.replay import ALL_PROJECTIONS, replay
from schemas.errors import ImportRefused
from service.cli.transfer import export_file, import_file
from tests.conftest import Tenant, create_database
from tests.projections.test_replay import _varied_history

EVENT_COLUMNS = "stream_id, seq, type, data::text, metadata::text, idempotency_key, created_at"
TENANT_TABLES = ("rooms", "members", "messages", "receipts", "message_search")


async def _rows(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def _tenant_state(url: str, tenant_id: str) -> dict[str, list[tuple[object, ...]]]:
    state = {"events": await _rows(url, f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 ORDER BY position",
                                   tenant_id),
             "streams": await _rows(url, "SELECT * FROM streams WHERE tenant_id = $1 ORDER BY stream_id", tenant_id)}
    for table in TENANT_TABLES:
        state[table] = await _rows(url, f"SELECT * FROM {table} AS t WHERE tenant_id = $1 ORDER BY t::text", tenant_id)
    return state


@pytest.fixture(scope="module")
async def target_url(pg_server_url: str) -> str:
    """A fresh database that already holds another tenant (imported first by the round-trip test)."""
    return await create_database(pg_server_url, "roomlog_import")


@pytest.fixture
async def exported(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, database_url: str, tmp_path: Path
) -> dict[str, Path]:
    """Export files of two tenants whose histories interleave in the source log."""
    rid = await _varied_history(client, tenant)
    other_room = (await client.post("/rooms", json={"type": "group", "members": ["zed"]},
                                    headers=other_tenant.as_user("yan"))).json()["room_id"]
    for i in range(3):
        for who, room in ((tenant.as_user("alice"), rid), (other_tenant.as_user("yan"), other_room)):
            response = await client.post(f"/rooms/{room}/messages", json={"content": f"interleaved {i}"}, headers=who)
            assert response.status_code == 201, response.text
    files = {"tenant": tmp_path / "tenant.jsonl", "other": tmp_path / "other.jsonl"}
    await export_file(database_url, tenant.tenant_id, since=0, output=str(files["tenant"]))
    await export_file(database_url, other_tenant.tenant_id, since=0, output=str(files["other"]))
    return files


async def test_round_trip_keeps_the_log_rebuilds_read_models_and_exports_byte_identical(
    exported: dict[str, Path], tenant: Tenant, database_url: str, target_url: str, tmp_path: Path
) -> None:
    await import_file(target_url, str(exported["other"]))  # the target holds another tenant first
    imported = await import_file(target_url, str(exported["tenant"]))
    assert imported.events == len((await _tenant_state(database_url, tenant.tenant_id))["events"])

    again = tmp_path / "again.jsonl"
    await export_file(target_url, tenant.tenant_id, since=0, output=str(again))
    assert again.read_bytes() == exported["tenant"].read_bytes()

    source = await _tenant_state(database_url, tenant.tenant_id)
    target = await _tenant_state(target_url, tenant.tenant_id)
    for table in ("events", "streams", "rooms", "members", "messages", "receipts"):
        assert target[table] == source[table], table
    assert target["message_search"], "the search index is rebuilt in the import"
    pool = await asyncpg.create_pool(target_url, min_size=1, max_size=2)
    try:
        report = await replay(pool, ALL_PROJECTIONS, verify=True, swap=False)
    finally:
        await pool.close()
    assert set(report.differences.values()) == {0}, report.differences


async def test_the_file_is_a_header_events_and_a_trailer_and_since_continues(
    exported: dict[str, Path], tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    lines = [json.loads(line) for line in exported["tenant"].read_bytes().splitlines()]
    header, events, trailer = lines[0], lines[1:-1], lines[-1]
    assert header == {"kind": "header", "format": 1, "tenant_id": tenant.tenant_id, "tenant_name": "test",
                      "since": 0, "until": len(events)}
    assert trailer["kind"] == "trailer" and trailer["events"] == len(events)
    assert trailer["streams"] == len({e["stream_id"] for e in events})
    tail = tmp_path / "tail.jsonl"
    await export_file(database_url, tenant.tenant_id, since=len(events) - 2, output=str(tail))
    tail_lines = [json.loads(line) for line in tail.read_bytes().splitlines()]
    assert tail_lines[0]["since"] == len(events) - 2 and tail_lines[0]["until"] == len(events)
    assert tail_lines[1:-1] == events[-2:]


def _corrupted(source: Path, target: Path, *, line: int | None, old: bytes, new: bytes) -> Path:
    """A copy of `source` with `old` replaced in one line (None: the first line holding it)."""
    lines = source.read_bytes().splitlines(keepends=True)
    if line is None:
        line = next(i for i, text in enumerate(lines) if old in text)
    lines[line] = lines[line].replace(old, new, 1)
    target.write_bytes(b"".join(lines))
    return target


@pytest.mark.parametrize(("damage", "reason"), [
    ("content", "checksum mismatch"), ("format", "export format 2"), ("truncated", "no trailer"),
    ("trailer count", "counts do not match"),
])
async def test_a_damaged_file_is_refused_with_nothing_written(
    exported: dict[str, Path], pg_server_url: str, tmp_path: Path, damage: str, reason: str
) -> None:
    good = exported["tenant"]
    bad = tmp_path / "bad.jsonl"
    if damage == "content":
        # still a valid line, so only the checksum can tell
        _corrupted(good, bad, line=None, old=b'"content": "', new=b'"content": "X')
    elif damage == "format":
        _corrupted(good, bad, line=0, old=b'"format":1', new=b'"format":2')
    elif damage == "truncated":
        bad.write_bytes(b"".join(good.read_bytes().splitlines(keepends=True)[:-1]))
    else:
        _corrupted(good, bad, line=-1, old=b'"events":', new=b'"events":1')
    empty = await create_database(pg_server_url, "roomlog_refused")
    with pytest.raises(ImportRefused, match=reason):
        await import_file(empty, str(bad))
    for table in ("events", "streams", "tenants", "messages"):
        assert await _rows(empty, f"SELECT * FROM {table}") == [], table


async def test_a_file_from_before_bot_secrets_left_the_log_imports_them_into_their_table(
    exported: dict[str, Path], tenant: Tenant, pg_server_url: str, tmp_path: Path
) -> None:
    # The bot events as builds before migration 071 exported them: the plaintext secret in the payload.
    legacy_secret = "whsec_" + "l" * 32
    lines = exported["tenant"].read_bytes().splitlines(keepends=True)
    for i, raw in enumerate(lines[1:-1], start=1):
        line = json.loads(raw)
        if line["type"] in ("bot.registered", "bot.updated") and "secret_id" in line["data"]:
            del line["data"]["secret_id"]
            line["data"]["secret"] = legacy_secret
            lines[i] = json.dumps(line, separators=(",", ":")).encode() + b"\n"
    trailer = json.loads(lines[-1])
    trailer["sha256"] = _sha256(b"".join(lines[:-1]))
    lines[-1] = json.dumps(trailer, separators=(",", ":")).encode() + b"\n"
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_bytes(b"".join(lines))
    assert legacy_secret.encode() in legacy.read_bytes()
    url = await create_database(pg_server_url, "roomlog_import_legacy")
    await import_file(url, str(legacy))
    in_log = await _rows(url, "SELECT count(*) FROM events WHERE data::text LIKE $1", f"%{legacy_secret}%")
    assert in_log == [(0,)]
    current = await _rows(url, "SELECT s.secret FROM bots b JOIN bot_secrets s ON s.tenant_id = b.tenant_id"
                               " AND s.secret_id = b.secret_id WHERE b.tenant_id = $1 AND b.bot_id = 'aurora'",
                          tenant.tenant_id)
    assert current == [(legacy_secret,)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
