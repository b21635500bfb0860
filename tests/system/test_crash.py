"""SIGKILL of `roomlog serve` in the middle of a send load: nothing acknowledged is lost, nothing is stored twice.

One module-scoped run does the work: 16 concurrent senders post messages (each with a unique client_msg_id)
to a few rooms of a real `roomlog serve` process; after 300+ acknowledged sends the process is SIGKILLed and
restarted on the same port, every interrupted send is re-sent, and the whole thing happens twice. The tests
then check the rooms as the restarted service reports them, and the search index (a catch-up projection the
kills interrupted too) once it has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from projections.catchup import events_behind
from service.cli.embedded import free_port
from tests.conftest import Tenant, make_tenant
from tests.system.conftest import Processes, Serve, roomlog_env

SENDERS = 16
ROOMS = 4
ROUNDS = 2
KILL_AFTER_ACKS = 300
LOAD_SECONDS = 30.0
# Seconds between reaching KILL_AFTER_ACKS and the kill, per round: varies which sends are caught mid-commit.
KILL_DELAYS = (0.0, 0.02)


@dataclass(frozen=True)
class Attempt:
    room_id: str
    user: str
    content: str


@dataclass(frozen=True)
class Ack:
    room_id: str
    message_id: str
    seq: int


@dataclass(frozen=True)
class Resent:
    status: int
    replay: bool
    message_id: str | None
    seq: int | None


@dataclass
class Round:
    exit_code: int = 0
    acked_at_kill: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    interrupted: list[str] = field(default_factory=list)
    # client_msg_id -> (message_id, seq) of what the restarted service had stored before any re-send
    stored_before_resend: dict[str, tuple[str, int]] = field(default_factory=dict)
    resent: dict[str, Resent] = field(default_factory=dict)


@dataclass
class CrashRun:
    tenant: Tenant
    room_ids: list[str]
    attempts: dict[str, Attempt] = field(default_factory=dict)
    acked: dict[str, Ack] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_seq: dict[str, int] = field(default_factory=dict)
    indexed: list[str] = field(default_factory=list)  # message_ids in the search index for the rooms


def sender_id(i: int) -> str:
    return f"sender{i}"


async def read_all(client: httpx.AsyncClient, path: str, user: str, tenant: Tenant, limit: int) -> list[dict[str, Any]]:
    """Every entry of a seq-ordered listing, paging with after_seq."""
    entries: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await client.get(path, params={"after_seq": after, "limit": limit}, headers=tenant.as_user(user))
        assert page.status_code == 200, page.text
        batch = page.json()
        if not batch:
            return entries
        entries += batch
        after = batch[-1]["seq"]


async def stored_messages(client: httpx.AsyncClient, run: CrashRun) -> dict[str, tuple[str, int]]:
    """client_msg_id -> (message_id, seq) of every message in the run's rooms."""
    stored = {}
    for room_id in run.room_ids:
        for m in await read_all(client, f"/rooms/{room_id}/messages", sender_id(0), run.tenant, 100):
            stored[m["client_msg_id"]] = (m["message_id"], m["seq"])
    return stored


async def load_until_killed(serve: Serve, run: CrashRun, round_no: int) -> Round:
    """Send from SENDERS tasks until the server is SIGKILLed, after KILL_AFTER_ACKS more acknowledged sends."""
    result = Round()
    target = len(run.acked) + KILL_AFTER_ACKS
    enough = asyncio.Event()

    async def sender(client: httpx.AsyncClient, i: int) -> None:
        n = 0
        while True:
            cmid = f"r{round_no}-s{i}-{n}-{uuid.uuid4().hex[:8]}"
            attempt = Attempt(run.room_ids[(i + n) % len(run.room_ids)], sender_id(i), f"round {round_no} #{i}.{n}")
            run.attempts[cmid] = attempt
            n += 1
            try:
                response = await client.post(
                    f"/rooms/{attempt.room_id}/messages", json={"content": attempt.content, "client_msg_id": cmid},
                    headers=run.tenant.as_user(attempt.user),
                )
            except httpx.TransportError:
                result.interrupted.append(cmid)
                return
            result.statuses[response.status_code] += 1
            if response.status_code != 201:
                result.interrupted.append(cmid)
                continue
            body = response.json()
            run.acked[cmid] = Ack(attempt.room_id, body["message_id"], body["seq"])
            if len(run.acked) >= target:
                enough.set()

    limits = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0, limits=limits) as client:
        senders = [asyncio.create_task(sender(client, i)) for i in range(SENDERS)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), LOAD_SECONDS)
        await asyncio.sleep(KILL_DELAYS[round_no % len(KILL_DELAYS)])
        result.acked_at_kill = len(run.acked) - (target - KILL_AFTER_ACKS)
        result.exit_code = await serve.signal_and_wait(signal.SIGKILL)
        await asyncio.gather(*senders)
    return result


async def resend_interrupted(serve: Serve, run: CrashRun, result: Round) -> None:
    """Re-send every interrupted client_msg_id to the restarted service, noting what it answers."""
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        result.stored_before_resend = await stored_messages(client, run)
        for cmid in result.interrupted:
            attempt = run.attempts[cmid]
            response = await client.post(
                f"/rooms/{attempt.room_id}/messages", json={"content": attempt.content, "client_msg_id": cmid},
                headers=run.tenant.as_user(attempt.user),
            )
            body = response.json() if response.status_code == 201 else {}
            result.resent[cmid] = Resent(
                response.status_code, response.headers.get("x-idempotent-replay") == "true",
                body.get("message_id"), body.get("seq"),
            )
            if response.status_code == 201:
                run.acked[cmid] = Ack(attempt.room_id, body["message_id"], body["seq"])


async def create_rooms(serve: Serve, tenant: Tenant) -> list[str]:
    """ROOMS group rooms that every sender is a member of."""
    members = [sender_id(i) for i in range(SENDERS)]
    room_ids = []
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        for _ in range(ROOMS):
            response = await client.post(
                "/rooms", json={"type": "group", "members": members}, headers=tenant.as_user("owner")
            )
            assert response.status_code == 201, response.text
            room_ids.append(response.json()["room_id"])
    return room_ids


async def read_back(serve: Serve, run: CrashRun) -> None:
    """The rooms' messages, raw events and last_seq as the service reports them."""
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        for room_id in run.room_ids:
            user = sender_id(0)
            run.messages[room_id] = await read_all(client, f"/rooms/{room_id}/messages", user, run.tenant, 100)
            run.events[room_id] = await read_all(client, f"/rooms/{room_id}/events", user, run.tenant, 1000)
            room = await client.get(f"/rooms/{room_id}", headers=run.tenant.as_user(user))
            assert room.status_code == 200, room.text
            run.last_seq[room_id] = room.json()["last_seq"]


async def indexed_once_caught_up(database_url: str, room_ids: list[str]) -> list[str]:
    """The message ids the search index (a catch-up projection, killed twice with the server) holds for the rooms,
    once it has applied the whole log."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while (await events_behind(conn))["search"] > 0:
            assert asyncio.get_running_loop().time() < deadline, "the search index did not catch up"
            await asyncio.sleep(0.05)
        rows = await conn.fetch("SELECT message_id FROM message_search WHERE room_id = ANY($1::text[])", room_ids)
    finally:
        await conn.close()
    return [r["message_id"] for r in rows]


@pytest.fixture(scope="module")
async def crash_run(
    database_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[CrashRun]:
    """ROUNDS rounds of load → SIGKILL → restart on the same port → re-send the interrupted sends."""
    env = roomlog_env(
        database_url=database_url, nats_url=nats_url, ROOMLOG_ACCESS_LOG="false",
        ROOMLOG_DEFAULT_RATE_LIMIT="0", ROOMLOG_DEFAULT_SEND_RATE_LIMIT="0",
    )
    port = free_port()
    with Processes(Path(tmp_path_factory.mktemp("crash"))) as processes:
        serve = processes.serve(env=env, port=port)
        await serve.wait_healthy()
        tenant = await make_tenant(database_url, "crash")
        run = CrashRun(tenant, await create_rooms(serve, tenant))
        for round_no in range(ROUNDS):
            result = await load_until_killed(serve, run, round_no)
            run.rounds.append(result)
            serve = processes.serve(env=env, port=port)
            await serve.wait_healthy()
            await resend_interrupted(serve, run, result)
        await read_back(serve, run)
        run.indexed = await indexed_once_caught_up(database_url, run.room_ids)
        await serve.signal_and_wait(signal.SIGINT)
        yield run


def test_each_round_sigkills_the_server_after_enough_acknowledged_sends(crash_run: CrashRun) -> None:
    assert len(crash_run.rounds) == ROUNDS
    for result in crash_run.rounds:
        assert result.exit_code == -signal.SIGKILL
        assert result.acked_at_kill >= KILL_AFTER_ACKS
        assert result.interrupted, "the kill interrupted no send"


def test_every_send_answered_before_the_kill_is_201(crash_run: CrashRun) -> None:
    for result in crash_run.rounds:
        assert set(result.statuses) == {201}, result.statuses


def test_every_acknowledged_message_survives_the_kill_with_its_seq_and_message_id(crash_run: CrashRun) -> None:
    stored = {
        m["client_msg_id"]: Ack(room_id, m["message_id"], m["seq"])
        for room_id, messages in crash_run.messages.items()
        for m in messages
    }
    lost = {cmid: ack for cmid, ack in crash_run.acked.items() if stored.get(cmid) != ack}
    assert not lost, f"{len(lost)} of {len(crash_run.acked)} acknowledged messages missing or changed: {lost}"


def test_each_room_log_is_exactly_seqs_one_to_last_seq(crash_run: CrashRun) -> None:
    for room_id, events in crash_run.events.items():
        assert [e["seq"] for e in events] == list(range(1, crash_run.last_seq[room_id] + 1))


def test_messages_are_exactly_the_message_events_of_the_room_log(crash_run: CrashRun) -> None:
    for room_id, events in crash_run.events.items():
        sent = [e["seq"] for e in events if e["type"] == "message.sent"]
        assert [m["seq"] for m in crash_run.messages[room_id]] == sent


def test_no_client_msg_id_is_stored_twice(crash_run: CrashRun) -> None:
    counts = Counter(m["client_msg_id"] for messages in crash_run.messages.values() for m in messages)
    assert sum(counts.values()) > ROUNDS * KILL_AFTER_ACKS
    assert [cmid for cmid, n in counts.items() if n > 1] == []


def test_resending_an_interrupted_send_returns_its_stored_result_or_stores_it_once(crash_run: CrashRun) -> None:
    final = Counter(m["client_msg_id"] for messages in crash_run.messages.values() for m in messages)
    for result in crash_run.rounds:
        for cmid, resent in result.resent.items():
            assert resent.status == 201, (cmid, resent)
            before = result.stored_before_resend.get(cmid)
            if before is not None:
                # It had been committed when the server died: the re-send is a replay of that message.
                assert resent.replay, (cmid, resent)
                assert (resent.message_id, resent.seq) == before
            else:
                assert not resent.replay, (cmid, resent)
            assert final[cmid] == 1



def test_the_search_index_holds_every_stored_message_exactly_once_after_the_kills(crash_run: CrashRun) -> None:
    stored = [m["message_id"] for messages in crash_run.messages.values() for m in messages]
    assert sorted(crash_run.indexed) == sorted(stored)
