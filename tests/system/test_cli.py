"""The `roomlog` command line against a real server: migrate, tenant create, replay, and --log-json output.

One fresh database of the session's PostgreSQL, used in order by module-scoped steps: migrate it twice
(the first time with --log-json), create a tenant with the CLI, drive some traffic through a
`roomlog --log-json serve` process, then replay the projections with --verify and one projection alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Tenant, create_database, database_name
from tests.system.conftest import Completed, Processes, roomlog_env, run_roomlog

MARKER = f"body-text-{uuid.uuid4().hex}"


@dataclass
class Migrated:
    first: Completed
    second: Completed
    schema_after_first: list[tuple[str, ...]]
    schema_after_second: list[tuple[str, ...]]


@dataclass
class Created:
    output: Completed
    tenant: Tenant


@dataclass
class Traffic:
    stderr: str
    room_id: str
    message_seqs: list[int]


def printed(text: str, label: str) -> str:
    """The value printed after `label:` in a command's output."""
    found = re.search(rf"{label}:\s*(\S+)", text)
    assert found is not None, text
    return found[1]


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every non-empty stderr line decoded as JSON (fails on the first line that is not)."""
    decoded = []
    for line in stderr.splitlines():
        if line.strip():
            try:
                decoded.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON line: {line!r}\n--- whole stderr ---\n{stderr}")
    return decoded


async def schema_of(url: str) -> list[tuple[str, ...]]:
    """Applied migrations, projection versions and every column of the public schema."""
    conn = await asyncpg.connect(url)
    try:
        migrations = await conn.fetch("SELECT version::text, name FROM schema_migrations ORDER BY version")
        versions = await conn.fetch("SELECT name, version::text FROM projection_versions ORDER BY name")
        columns = await conn.fetch(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns"
            " WHERE table_schema = 'public' ORDER BY table_name, column_name"
        )
    finally:
        await conn.close()
    return [("migration", *r.values()) for r in migrations] + [("projection", *r.values()) for r in versions] + [
        ("column", *r.values()) for r in columns
    ]


@pytest.fixture(scope="module")
async def cli_url(pg_server_url: str) -> AsyncIterator[str]:
    """A brand-new, empty database on the session's server (dropped at the end of the module)."""
    url = await create_database(pg_server_url, "roomlog_cli", migrate=False)
    name = database_name(url)
    yield url
    conn = await asyncpg.connect(pg_server_url)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """The module's serve processes, killed at the end of the module if still running."""
    with Processes(Path(tmp_path_factory.mktemp("cli-logs"))) as procs:
        yield procs


@pytest.fixture(scope="module")
async def migrated(cli_url: str) -> Migrated:
    """`roomlog --log-json migrate` on the empty database, then `roomlog migrate` once more."""
    env = roomlog_env(database_url=cli_url)
    first = await run_roomlog("--log-json", "migrate", env=env)
    after_first = await schema_of(cli_url)
    second = await run_roomlog("migrate", env=env)
    return Migrated(first, second, after_first, await schema_of(cli_url))


@pytest.fixture(scope="module")
async def created(migrated: Migrated, cli_url: str) -> Created:
    """`roomlog tenant create acme` on the migrated database."""
    output = await run_roomlog("tenant", "create", "acme", env=roomlog_env(database_url=cli_url))
    assert output.returncode == 0, output.stderr
    return Created(output, Tenant(printed(output.stdout, "tenant_id"), printed(output.stdout, "api_key")))


@pytest.fixture(scope="module")
async def traffic(created: Created, cli_url: str, nats_url: str, processes: Processes) -> Traffic:
    """Rooms, membership changes, a rename, messages and an ack through `roomlog --log-json serve`."""
    env = roomlog_env(database_url=cli_url, nats_url=nats_url)
    serve = processes.serve(env=env, global_args=("--log-json",))
    await serve.wait_healthy()
    alice, bob = created.tenant.as_user("alice"), created.tenant.as_user("bob")
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:

        async def call(method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code in (200, 201, 204), (method, path, response.status_code, response.text)
            return response.json() if response.content else None

        room = await call("POST", "/rooms", alice, {"type": "group", "members": ["bob", "carol"]})
        room_id = room["room_id"]
        await call("POST", "/rooms", alice, {"type": "dm", "members": ["bob"]})
        await call("POST", f"/rooms/{room_id}/members", alice, {"user_ids": ["dave"]})
        await call("PATCH", f"/rooms/{room_id}", alice, {"name": "renamed"})
        seqs = []
        for i in range(5):
            sent = await call("POST", f"/rooms/{room_id}/messages", alice,
                              {"content": f"{MARKER} {i}", "client_msg_id": f"cli-{i}"})
            seqs.append(sent["seq"])
        await call("POST", "/acks", bob, {"room_id": room_id, "seq": seqs[-1]})
        await call("DELETE", f"/rooms/{room_id}/members/carol", alice)
    await serve.signal_and_wait(signal.SIGINT)
    return Traffic(serve.stderr(), room_id, seqs)


@pytest.fixture(scope="module")
async def replay_verify(traffic: Traffic, cli_url: str) -> Completed:
    """`roomlog replay --verify` after the traffic."""
    return await run_roomlog("replay", "--verify", env=roomlog_env(database_url=cli_url))


@pytest.fixture(scope="module")
async def replay_messages(replay_verify: Completed, cli_url: str) -> tuple[Completed, list[Any], list[Any]]:
    """`roomlog replay --projection messages`, with the messages table before and after."""
    query = "SELECT message_id, seq, content FROM messages ORDER BY message_id"
    conn = await asyncpg.connect(cli_url)
    try:
        before = [tuple(r.values()) for r in await conn.fetch(query)]
        output = await run_roomlog("replay", "--projection", "messages", env=roomlog_env(database_url=cli_url))
        after = [tuple(r.values()) for r in await conn.fetch(query)]
    finally:
        await conn.close()
    return output, before, after


def test_migrate_applies_every_migration_to_a_fresh_database(migrated: Migrated) -> None:
    assert migrated.first.returncode == 0, migrated.first.stderr
    assert "database is up to date" in migrated.first.stdout
    assert any(row[0] == "migration" for row in migrated.schema_after_first)
    assert "migrations applied" in migrated.first.stderr


def test_migrate_a_second_time_applies_nothing_and_changes_no_schema(migrated: Migrated) -> None:
    assert migrated.second.returncode == 0, migrated.second.stderr
    assert "migrations applied" not in migrated.second.stderr
    assert migrated.schema_after_second == migrated.schema_after_first


def test_log_json_makes_every_stderr_line_of_a_command_a_json_object(migrated: Migrated) -> None:
    lines = json_lines(migrated.first.stderr)
    assert lines, "migrate --log-json logged nothing"
    assert all(isinstance(line, dict) and "event" in line and "level" in line for line in lines)
    assert "migrations applied" in [line["event"] for line in lines]


def test_tenant_create_prints_a_tenant_id_and_an_api_key(created: Created) -> None:
    assert created.tenant.tenant_id.startswith("tn_")
    assert created.tenant.api_key.startswith("rlk_")
    assert len(created.tenant.api_key) > 40


async def test_tenant_create_stores_the_sha256_of_the_key(created: Created, cli_url: str) -> None:
    conn = await asyncpg.connect(cli_url)
    try:
        hashes = await conn.fetch("SELECT key_hash FROM api_keys WHERE tenant_id = $1", created.tenant.tenant_id)
    finally:
        await conn.close()
    assert [bytes(r["key_hash"]) for r in hashes] == [hashlib.sha256(created.tenant.api_key.encode()).digest()]


async def test_tenant_create_stores_the_key_text_nowhere(created: Created, cli_url: str) -> None:
    conn = await asyncpg.connect(cli_url)
    try:
        rows = [
            r["row"] for table in ("tenants", "api_keys")
            for r in await conn.fetch(f"SELECT row_to_json(t)::text AS row FROM {table} t")
        ]
    finally:
        await conn.close()
    assert any(created.tenant.tenant_id in row for row in rows)
    assert not [row for row in rows if created.tenant.api_key in row]


def test_serve_log_json_writes_only_json_lines(traffic: Traffic) -> None:
    assert len(json_lines(traffic.stderr)) > 10


def test_access_log_line_carries_method_route_status_duration_tenant_and_user(
    traffic: Traffic, created: Created
) -> None:
    sends = [
        line for line in json_lines(traffic.stderr)
        if line.get("event") == "request" and line.get("route") == "/rooms/{room_id}/messages"
    ]
    assert len(sends) == len(traffic.message_seqs)
    for line in sends:
        assert line["method"] == "POST"
        assert line["status"] == 201
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
        assert line["tenant"] == created.tenant.tenant_id
        assert line["user"] == "alice"


def test_access_log_never_contains_a_request_body_or_the_api_key(traffic: Traffic, created: Created) -> None:
    assert "request" in traffic.stderr
    assert MARKER not in traffic.stderr
    assert created.tenant.api_key not in traffic.stderr


def test_replay_verify_finds_every_table_identical_after_traffic(replay_verify: Completed) -> None:
    assert replay_verify.returncode == 0, replay_verify.stdout + replay_verify.stderr
    verdicts = dict(re.findall(r"verify (\w+): (.+)", replay_verify.stdout))
    # message_search is a catch-up projection: identical because a clean stop lets it apply everything committed.
    assert {"messages", "rooms", "message_search"} <= set(verdicts), replay_verify.stdout
    assert set(verdicts.values()) == {"identical"}, verdicts


def test_replay_of_the_messages_projection_alone_rebuilds_the_same_messages(
    replay_messages: tuple[Completed, list[Any], list[Any]], traffic: Traffic
) -> None:
    output, before, after = replay_messages
    assert output.returncode == 0, output.stdout + output.stderr
    assert "into messages in" in output.stdout
    assert "swapped in" in output.stdout
    assert len(after) == len(traffic.message_seqs)
    assert after == before
