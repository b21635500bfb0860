"""The relay and live delivery under failure: NATS down while appends commit (and already down at start-up),
a process killed between commit and publish, and relay leadership moving when the leader is SIGKILLed.

This module has a database and a nats-server of its own: it stops NATS, and it reads the relay's checkpoint,
its advisory lock and the JetStream stream, none of which may be shared with other tests' servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
import pytest

from service.cli.embedded import NatsServer
from service.realtime.jetstream import EVENTS_STREAM
from tests.conftest import Tenant, create_database, make_tenant
from tests.system._servers import Api, WsClient, closing, start_serve, wait_health, wait_live
from tests.system.conftest import Processes, Serve

RELAY_LOCK = 7_201_003  # eventstore/relay.py
OUTAGE_CPU_SECONDS = 3.0
DURING_OUTAGE = 30
# How long recovery may take at most here; test_live_delivery_resumes_promptly_after_nats_returns is stricter.
RECOVERY_SECONDS = 30.0
PROMPT_SECONDS = 5.0
# A start against a reachable NATS takes 1-3 s here; without NATS it must not take longer.
START_WITHOUT_NATS_SECONDS = 10.0
STOP_WITHOUT_NATS_SECONDS = 10.0


@dataclass
class Setup:
    database_url: str
    nats: NatsServer

    @property
    def nats_url(self) -> str:
        return self.nats.url


@pytest.fixture(scope="module")
def relay_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server the tests may stop and start again (same port, same JetStream store)."""
    server = NatsServer(tmp_path_factory.mktemp("relay-nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def setup(pg_server_url: str, relay_nats: NatsServer) -> Setup:
    return Setup(await create_database(pg_server_url, "roomlog_relay"), relay_nats)


@pytest.fixture
async def relay_tenant(setup: Setup) -> Tenant:
    return await make_tenant(setup.database_url)


@contextlib.contextmanager
def nats_down(server: NatsServer) -> Iterator[None]:
    """Stop the nats-server for the block; it is started again (same port and store) however the block ends."""
    server.stop()
    try:
        yield
    finally:
        server.start()


async def log_end(database_url: str) -> tuple[int, int]:
    """(highest position in the log, the relay's checkpoint)."""
    conn = await asyncpg.connect(database_url)
    try:
        top = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        checkpoint = await conn.fetchval("SELECT coalesce(max(position), 0) FROM relay_checkpoints")
    finally:
        await conn.close()
    return int(top), int(checkpoint)


async def wait_checkpoint_at_log_end(database_url: str, *, seconds: float = RECOVERY_SECONDS) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    while True:
        top, checkpoint = await log_end(database_url)
        if checkpoint == top or time.monotonic() > deadline:
            return top, checkpoint
        await asyncio.sleep(0.1)


async def published_positions(nats_url: str) -> Counter[int]:
    """How often each log position (Nats-Msg-Id) is stored in the events stream."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(EVENTS_STREAM)).state
        seen: Counter[int] = Counter()
        for seq in range(state.first_seq, state.last_seq + 1):
            msg = await js.get_msg(EVENTS_STREAM, seq)
            seen[int((msg.headers or {})["Nats-Msg-Id"])] += 1
    finally:
        await nc.close()
    return seen


async def log_positions(database_url: str) -> set[int]:
    conn = await asyncpg.connect(database_url)
    try:
        return {r["position"] for r in await conn.fetch("SELECT position FROM events")}
    finally:
        await conn.close()


async def lock_holders(database_url: str) -> list[int]:
    """Backend pids holding the relay's advisory lock in this database."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            RELAY_LOCK,
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def leads(serve: Serve) -> bool:
    """Whether this instance logged that it took the relay lock."""
    return "relay leading" in serve.stderr()


async def wait_in_order(client: WsClient, room_id: str, first: int, last: int) -> None:
    await client.wait_until(lambda: client.seqs(room_id)[-1:] == [last], seconds=RECOVERY_SECONDS)
    await client.barrier()
    assert client.seqs(room_id) == list(range(first, last + 1))


@contextlib.asynccontextmanager
async def bob_synced(
    tmp_path: Path, setup: Setup, tenant: Tenant
) -> AsyncIterator[tuple[Serve, Api, str, WsClient]]:
    """A `roomlog serve` on the module's servers, a room of alice and bob, and bob's WebSocket synced from 0."""
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
        await wait_live(serve, tenant)
        async with Api(serve.base_url, tenant) as api:
            room = await api.create_room("alice", ["bob"])
            bob = await WsClient.open(serve.base_url, await api.token("bob"))
            async with closing(bob):
                await bob.sync({room["room_id"]: 0})
                yield serve, api, room["room_id"], bob


async def test_events_committed_while_nats_is_down_reach_connected_clients_from_the_log_in_order(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    async with bob_synced(tmp_path, setup, relay_tenant) as (serve, api, room_id, bob):
        before = (await api.send(room_id, "alice", "before the outage"))["seq"]
        await bob.wait_for(lambda f: f.get("seq") == before)
        with nats_down(setup.nats):
            await wait_health(serve, lambda body: body.get("nats_connected") is False)
            for i in range(DURING_OUTAGE):
                await api.send(room_id, "alice", f"during the outage {i}")
            with contextlib.suppress(AssertionError):
                await bob.wait_until(lambda: bob.seqs(room_id)[-1] == before + DURING_OUTAGE,
                                     seconds=PROMPT_SECONDS)
            seen_during_outage = bob.seqs(room_id)[-1]
        await wait_health(serve, lambda body: body.get("nats_connected") is True)
        await api.send(room_id, "alice", "after the outage")
        last = await api.last_seq(room_id, "alice")
        await wait_in_order(bob, room_id, 1, last)

    assert seen_during_outage == before + DURING_OUTAGE  # nothing could be published: read from the log
    assert last == before + DURING_OUTAGE + 1


async def test_live_delivery_resumes_promptly_after_nats_returns(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    async with bob_synced(tmp_path, setup, relay_tenant) as (serve, api, room_id, bob):
        with nats_down(setup.nats):
            await wait_health(serve, lambda body: body.get("nats_connected") is False)
        await wait_health(serve, lambda body: body.get("nats_connected") is True)
        sent = await api.send(room_id, "alice", "right after NATS returned")
        started = time.monotonic()
        with contextlib.suppress(AssertionError):
            await bob.wait_for(lambda f: f.get("seq") == sent["seq"], seconds=PROMPT_SECONDS)
        waited = time.monotonic() - started

    assert waited < PROMPT_SECONDS, f"a message sent after NATS returned was not delivered within {PROMPT_SECONDS}s"


@contextlib.contextmanager
def nats_killed(server: NatsServer) -> Iterator[None]:
    """SIGKILL the nats-server for the block; it is started again (same port and store) however the block ends."""
    pid = int((server.store_dir / "nats-server.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    try:
        yield
    finally:
        server.stop()  # reaps the killed process
        server.start()


async def test_after_nats_is_killed_clients_keep_receiving_every_event_and_the_service_stops_cleanly(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    async with bob_synced(tmp_path, setup, relay_tenant) as (serve, api, room_id, bob):
        with nats_killed(setup.nats):
            await wait_health(serve, lambda body: body.get("nats_connected") is False)
            for i in range(DURING_OUTAGE):
                await api.send(room_id, "alice", f"nats is dead {i}")
            during = await api.last_seq(room_id, "alice")
            with contextlib.suppress(AssertionError):
                await bob.wait_until(lambda: bob.seqs(room_id)[-1:] == [during], seconds=PROMPT_SECONDS)
            seen_while_dead = bob.seqs(room_id)[-1:]
        await wait_health(serve, lambda body: body.get("nats_connected") is True)
        sent = await api.send(room_id, "alice", "nats is back")
        with contextlib.suppress(AssertionError):
            await bob.wait_for(lambda f: f.get("seq") == sent["seq"], seconds=PROMPT_SECONDS)
        seen_after = bob.seqs(room_id)
        with nats_killed(setup.nats):
            await wait_health(serve, lambda body: body.get("nats_connected") is False)
            started = time.monotonic()
            code = await serve.signal_and_wait(signal.SIGTERM)
            stop_seconds = time.monotonic() - started

    assert seen_while_dead == [during], f"bob stopped at {seen_while_dead} while {during} was committed"
    assert seen_after == list(range(1, sent["seq"] + 1))
    assert code == 0
    assert stop_seconds < STOP_WITHOUT_NATS_SECONDS
    assert "Application shutdown failed" not in serve.stderr()


async def test_service_starts_and_takes_messages_while_nats_is_unreachable(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs, nats_down(setup.nats):
        serve = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url, nats_up=False,
                                  seconds=START_WITHOUT_NATS_SECONDS)
        async with Api(serve.base_url, relay_tenant) as api:
            room = await api.create_room("alice", ["bob"])
            sent = await api.send(room["room_id"], "alice", "stored without NATS")

    assert sent["seq"] == room["last_seq"] + 1


async def test_clients_connected_while_nats_was_down_receive_live_events_once_it_is_up(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        with nats_down(setup.nats):
            serve = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url,
                                      nats_up=False, seconds=START_WITHOUT_NATS_SECONDS)
            async with Api(serve.base_url, relay_tenant) as api:
                room = await api.create_room("alice", ["bob"])
                bob = await WsClient.open(serve.base_url, await api.token("bob"))
                await bob.sync({room["room_id"]: 0})
        async with Api(serve.base_url, relay_tenant) as api, closing(bob):
            await wait_health(serve, lambda body: body.get("nats_connected") is True)
            sent = await api.send(room["room_id"], "alice", "now that NATS is up")
            with contextlib.suppress(AssertionError):
                await bob.wait_for(lambda f: f.get("seq") == sent["seq"], seconds=PROMPT_SECONDS * 2)

    assert bob.seqs(room["room_id"]) == list(range(1, sent["seq"] + 1)), bob.frames[-2:]


async def test_relay_checkpoint_reaches_the_log_end_after_nats_returns(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
        await wait_live(serve, relay_tenant)
        async with Api(serve.base_url, relay_tenant) as api:
            room = await api.create_room("alice", ["bob"])
            with nats_down(setup.nats):
                await wait_health(serve, lambda body: body.get("nats_connected") is False)
                for i in range(DURING_OUTAGE):
                    await api.send(room["room_id"], "alice", f"during the outage {i}")
                stuck_top, stuck_checkpoint = await log_end(setup.database_url)
            top, checkpoint = await wait_checkpoint_at_log_end(setup.database_url)

    assert stuck_checkpoint < stuck_top
    assert checkpoint == top >= stuck_top


async def test_events_of_a_process_killed_before_publishing_are_published_once_after_restart(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        first = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
        await wait_live(first, relay_tenant)
        async with Api(first.base_url, relay_tenant) as api:
            room = await api.create_room("alice", ["bob"])
            room_id = room["room_id"]
            bob = await WsClient.open(first.base_url, await api.token("bob"))
            async with closing(bob):
                await bob.sync({room_id: 0})
                with nats_down(setup.nats):
                    await wait_health(first, lambda body: body.get("nats_connected") is False)
                    acked = [(await api.send(room_id, "alice", f"acked, never published {i}"))["seq"]
                             for i in range(DURING_OUTAGE)]
                    first.proc.kill()  # committed and answered 201, never published
                    await bob.wait_closed()
                    have = (bob.seqs(room_id) or [0])[-1]
        second = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
        async with Api(second.base_url, relay_tenant) as api:
            resumed = await WsClient.open(second.base_url, await api.token("bob"))
            async with closing(resumed):
                await resumed.sync({room_id: have})
                await api.send(room_id, "alice", "after the restart")
                last = await api.last_seq(room_id, "alice")
                await wait_in_order(resumed, room_id, have + 1, last)
        top, checkpoint = await wait_checkpoint_at_log_end(setup.database_url)
        published = await published_positions(setup.nats_url)
        logged = await log_positions(setup.database_url)

    assert have < acked[-1] == last - 1
    assert checkpoint == top
    assert set(published) == logged  # every committed event reached the stream ...
    assert max(published.values()) == 1  # ... exactly once


async def test_only_one_instance_leads_the_relay_and_another_takes_over_when_it_is_killed(
    tmp_path: Path, setup: Setup, relay_tenant: Tenant
) -> None:
    with Processes(tmp_path) as procs:
        serves = [await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
                  for _ in range(2)]
        for serve in serves:
            await wait_live(serve, relay_tenant)
        holders_before = await lock_holders(setup.database_url)
        leaders_before = [s for s in serves if leads(s)]
        leader = leaders_before[0]
        survivor = next(s for s in serves if s is not leader)
        async with Api(survivor.base_url, relay_tenant) as api:
            room = await api.create_room("alice", ["bob"])
            room_id = room["room_id"]
            bob = await WsClient.open(survivor.base_url, await api.token("bob"))
            async with closing(bob):
                await bob.sync({room_id: 0})
                leader.proc.kill()
                for i in range(5):
                    await api.send(room_id, "alice", f"after the leader died {i}")
                last = await api.last_seq(room_id, "alice")
                await wait_in_order(bob, room_id, 1, last)
        holders_after = await lock_holders(setup.database_url)
        top, checkpoint = await wait_checkpoint_at_log_end(setup.database_url)

    assert len(holders_before) == 1
    assert len(leaders_before) == 1
    assert leads(survivor)
    assert len(holders_after) == 1 and holders_after != holders_before
    assert checkpoint == top


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_nats_outage_leaves_the_event_loop_idle(tmp_path: Path, setup: Setup, relay_tenant: Tenant) -> None:
    with Processes(tmp_path) as procs:
        serve = await start_serve(procs, database_url=setup.database_url, nats_url=setup.nats_url)
        await wait_live(serve, relay_tenant)
        with nats_down(setup.nats):
            await wait_health(serve, lambda body: body.get("nats_connected") is False)
            before, started = cpu_seconds(serve.proc.pid), time.monotonic()
            await asyncio.sleep(OUTAGE_CPU_SECONDS)
            busy = (cpu_seconds(serve.proc.pid) - before) / (time.monotonic() - started)

    # An idle instance waiting for NATS to come back needs next to no CPU; a starved loop answers nobody.
    assert busy < 0.3, f"an idle instance used {busy:.0%} of a core while NATS was down"
