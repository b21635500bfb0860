"""Two real `roomlog serve` processes on one PostgreSQL and one NATS: every client gets every event once, in order.

Clients and senders sit on either instance; hypothesis picks the rooms, who syncs what where, the sends
(REST or WebSocket, through either instance, in concurrent bursts), reconnects to either instance with the
client's last seq while the rooms move on, and acks. A client's history is what it received over all its
connections, each resumed from the last seq it had: per room it must be exactly 1..last_seq.
A third instance is SIGKILLed mid-stream: its clients resume on another instance and miss nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Tenant, make_tenant
from tests.system._servers import Api, WsClient, closing, start_serve, wait_live, with_field
from tests.system.conftest import Processes, Serve

USERS = ("u0", "u1", "u2")
SENDER = "writer"  # a member of every room who sends over the socket and syncs nothing
KILL_ROOMS = 2
KILL_SENDS = 240
KILL_AFTER = 60


@dataclass(frozen=True)
class ClientSpec:
    user: int
    instance: int
    rooms: frozenset[int]


@dataclass(frozen=True)
class SendOp:
    room: int
    instance: int
    via: Literal["rest", "ws"]
    sender: int
    count: int


@dataclass(frozen=True)
class Reconnect:
    client: int
    instance: int


@dataclass(frozen=True)
class AckOp:
    client: int
    room: int


@dataclass(frozen=True)
class Pause:
    seconds: float


Op = SendOp | Reconnect | AckOp | Pause


@dataclass(frozen=True)
class Scenario:
    rooms: int
    clients: list[ClientSpec]
    ops: list[Op]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Rooms, clients (user, instance, synced rooms) and an interleaving of sends, reconnects, acks and pauses."""
    rooms = draw(st.integers(1, 3))
    room_sets = st.frozensets(st.integers(0, rooms - 1), min_size=1)
    clients = draw(st.lists(st.builds(ClientSpec, st.integers(0, len(USERS) - 1), st.integers(0, 1), room_sets),
                            min_size=2, max_size=4))
    n = len(clients)
    op = st.one_of(
        st.builds(SendOp, st.integers(0, rooms - 1), st.integers(0, 1), st.sampled_from(["rest", "ws"]),
                  st.integers(0, len(USERS) - 1), st.integers(1, 8)),
        st.builds(Reconnect, st.integers(0, n - 1), st.integers(0, 1)),
        st.builds(AckOp, st.integers(0, n - 1), st.integers(0, rooms - 1)),
        st.builds(Pause, st.sampled_from([0.0, 0.01, 0.05])),
    )
    return Scenario(rooms, clients, draw(st.lists(op, min_size=3, max_size=14)))


@dataclass
class Subscriber:
    """One client across its connections: what it received before, and its current connection."""

    user: str
    rooms: list[str]
    conn: WsClient
    past: dict[str, list[int]] = field(default_factory=dict)

    def history(self, room_id: str) -> list[int]:
        return self.past.get(room_id, []) + self.conn.seqs(room_id)

    def have(self) -> dict[str, int]:
        return {r: (self.history(r) or [0])[-1] for r in self.rooms}

    def has_all(self, last: dict[str, int]) -> Callable[[], bool]:
        """Whether this client has reached `last` in each of its rooms (checked when called)."""
        return lambda: all(seq >= last[r] for r, seq in self.have().items())

    async def reconnect(self, base_url: str, token: str) -> None:
        """Resume on (another) instance from the last seq of each room this client has."""
        await self.conn.close()
        for room_id in self.rooms:
            self.past[room_id] = self.history(room_id)
        self.conn = await WsClient.open(base_url, token)
        await self.conn.sync(self.have())


@dataclass
class Cluster:
    serves: list[Serve]
    database_url: str


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str) -> AsyncIterator[Cluster]:
    """Two instances for the whole module (hypothesis examples reuse them)."""
    with Processes(tmp_path_factory.mktemp("two-instances")) as procs:
        serves = [await start_serve(procs, database_url=database_url, nats_url=nats_url) for _ in range(2)]
        probe = await make_tenant(database_url)
        for serve in serves:
            await wait_live(serve, probe)
        yield Cluster(serves, database_url)


async def wait_complete(subscribers: list[Subscriber], last: dict[str, int]) -> None:
    """Wait until every subscriber has the last seq of each of its rooms."""
    for sub in subscribers:
        await sub.conn.wait_until(sub.has_all(last), seconds=20)


def assert_exactly_once_in_order(subscribers: list[Subscriber], last: dict[str, int]) -> None:
    for sub in subscribers:
        for room_id in sub.rooms:
            assert sub.history(room_id) == list(range(1, last[room_id] + 1)), (sub.user, room_id)
        for room_id in set(last) - set(sub.rooms):
            assert sub.history(room_id) == [], (sub.user, room_id)  # nothing of rooms it did not sync


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
async def test_every_client_receives_every_event_of_its_rooms_once_in_seq_order(
    cluster: Cluster, scenario: Scenario
) -> None:
    tenant = await make_tenant(cluster.database_url)
    apis = [Api(s.base_url, tenant) for s in cluster.serves]
    writers: list[WsClient] = []
    subscribers: list[Subscriber] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        rooms = [(await apis[0].create_room(USERS[0], [*USERS[1:], SENDER]))["room_id"] for _ in range(scenario.rooms)]
        writers = [await WsClient.open(s.base_url, await apis[i].token(SENDER)) for i, s in enumerate(cluster.serves)]
        for spec in scenario.clients:
            user = USERS[spec.user]
            conn = await WsClient.open(cluster.serves[spec.instance].base_url, await apis[spec.instance].token(user))
            sub = Subscriber(user, [rooms[r] for r in sorted(spec.rooms)], conn)
            await conn.sync(sub.have())
            subscribers.append(sub)

        ws_sends = 0
        for op in scenario.ops:
            if isinstance(op, SendOp):
                if op.via == "ws":
                    ws_sends += op.count
                tasks.append(asyncio.create_task(burst(op, rooms, apis, writers)))
            elif isinstance(op, Reconnect):
                sub = subscribers[op.client]
                await sub.reconnect(cluster.serves[op.instance].base_url, await apis[op.instance].token(sub.user))
            elif isinstance(op, AckOp):
                sub = subscribers[op.client]
                room_id = rooms[op.room]
                if room_id in sub.rooms and sub.have()[room_id] > 0:
                    await sub.conn.send({"type": "ack", "room_id": room_id, "seq": sub.have()[room_id]})
            else:
                await asyncio.sleep(op.seconds)
        await asyncio.gather(*tasks)
        last = {r: await apis[1].last_seq(r, USERS[0]) for r in rooms}
        await wait_complete(subscribers, last)
        for sub in subscribers:
            await sub.conn.barrier()
    finally:
        for task in tasks:
            task.cancel()
        for client in [*writers, *(s.conn for s in subscribers)]:
            await client.close()
        for api in apis:
            await api.http.aclose()

    assert_exactly_once_in_order(subscribers, last)
    assert sum(w.count(lambda f: f.get("type") == "send.ok") for w in writers) == ws_sends
    assert [f for s in subscribers for f in s.conn.frames if f.get("type") == "error"] == []


async def burst(op: SendOp, rooms: list[str], apis: list[Api], writers: list[WsClient]) -> None:
    """`op.count` messages, one after another, through one instance."""
    room_id = rooms[op.room]
    for _ in range(op.count):
        if op.via == "rest":
            await apis[op.instance].send(room_id, USERS[op.sender], "over REST")
        else:
            writer = writers[op.instance]
            cmid = uuid.uuid4().hex
            await writer.send({"type": "send", "room_id": room_id, "content": "over the socket", "client_msg_id": cmid})
            await writer.wait_for(with_field("client_msg_id", cmid))


# --- an instance dies mid-stream ----------------------------------------------------------------------------


async def send_with_failover(apis: list[Api], room_id: str, user: str, content: str) -> None:
    """POST a message through the first instance that answers, retrying with the same client_msg_id."""
    cmid = uuid.uuid4().hex
    for attempt in range(40):
        for api in apis:
            with contextlib.suppress(httpx.TransportError):
                await api.send(room_id, user, content, client_msg_id=cmid)
                return
        await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("no instance took the message")


async def test_clients_of_a_killed_instance_resume_on_another_and_miss_nothing(
    cluster: Cluster, tmp_path: Path, database_url: str, nats_url: str, tenant: Tenant
) -> None:
    survivor = cluster.serves[0]
    with Processes(tmp_path) as procs:
        victim = await start_serve(procs, database_url=database_url, nats_url=nats_url)
        await wait_live(victim, tenant)
        async with Api(victim.base_url, tenant) as on_victim, Api(survivor.base_url, tenant) as on_survivor:
            rooms = [(await on_survivor.create_room(USERS[0], list(USERS[1:])))["room_id"] for _ in range(KILL_ROOMS)]
            subscribers = []
            for user, api, serve in ((USERS[0], on_victim, victim), (USERS[1], on_victim, victim),
                                     (USERS[2], on_survivor, survivor)):
                sub = Subscriber(user, rooms, await WsClient.open(serve.base_url, await api.token(user)))
                await sub.conn.sync(sub.have())
                subscribers.append(sub)
            on_victims_side = subscribers[:2]
            acked = 0
            enough = asyncio.Event()

            async def sender(worker: int, first: Api, second: Api) -> None:
                nonlocal acked
                for i in range(worker, KILL_SENDS, 4):
                    await send_with_failover([first, second], rooms[i % KILL_ROOMS], USERS[i % 3], f"msg {i}")
                    acked += 1
                    if acked >= KILL_AFTER:
                        enough.set()

            orders = [(on_victim, on_survivor), (on_survivor, on_victim)]
            senders = [asyncio.create_task(sender(w, *orders[w % 2])) for w in range(4)]
            async with closing(*(s.conn for s in subscribers)):
                await enough.wait()
                victim.proc.kill()
                for sub in on_victims_side:
                    await sub.conn.wait_closed()
                    await sub.reconnect(survivor.base_url, await on_survivor.token(sub.user))
                await asyncio.gather(*senders)
                last = {r: await on_survivor.last_seq(r, USERS[0]) for r in rooms}
                await wait_complete(subscribers, last)

    assert sum(last.values()) == KILL_ROOMS * 4 + KILL_SENDS  # room.created + 3 member.joined per room
    # Killed mid-stream: its clients had part of the events when they moved.
    assert all(0 < sum(map(len, s.past.values())) < sum(last.values()) for s in on_victims_side)
    assert_exactly_once_in_order(subscribers, last)
