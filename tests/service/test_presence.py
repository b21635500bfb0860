"""service/realtime/presence.py and service/routes/presence.py: presence on real NATS and PostgreSQL.

Two instances (each its own NATS connection, hub and presence, sharing one fake clock) agree on a user's
presence and tell a watcher on the other instance every change; the API sets and reads it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NatsClient
from starlette.applications import Starlette
from websockets.asyncio.client import connect

from projections.streams import user_stream
from schemas.config import Settings
from schemas.events import EventMetadata, PresenceStatusSet, RecordedEvent
from schemas.presence import PresenceUpdated
from service.app import create_app
from service.realtime.hub import Hub
from service.realtime.jetstream import presence_bucket
from service.realtime.presence import Presence
from service.runtime import Runtime, start_runtime, stop_runtime
from tests.conftest import Tenant, error_of, serving

_float = msgspec.json.Decoder(float)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Watcher:
    """A client as the hub sees it: records the presence frames offered to it."""

    tenant_id: str
    user_id: str
    frames: asyncio.Queue[PresenceUpdated] = field(default_factory=asyncio.Queue)

    def offer_event(self, event: RecordedEvent, text: str) -> None:
        pass

    def offer_frame(self, frame: msgspec.Struct, *, room_id: str | None = None) -> None:
        if isinstance(frame, PresenceUpdated):
            self.frames.put_nowait(frame)

    def offer_resume(self) -> None:
        pass

    async def shut_down(self, reconnect_after_ms: int) -> None:
        pass

    async def next(self) -> PresenceUpdated:
        return await asyncio.wait_for(self.frames.get(), 5)

    def __hash__(self) -> int:
        return id(self)


@dataclass
class Instance:
    nc: NatsClient
    hub: Hub
    presence: Presence


@pytest.fixture
async def instances(runtime: Runtime, nats_url: str) -> AsyncIterator[tuple[FakeClock, Instance, Instance]]:
    """Two instances on one fake clock, without flush tasks of their own: the test flushes each explicitly.

    A background flush would run on the real clock's schedule but at fake times: after the clock jumped it could
    renew a lease with a value computed before the jump and overwrite a fresher one, so the other instance read
    the socket's lease as lapsed (a flaky `offline` where `away` was due).

    The session's service (`client`, `runtime`) is a third instance, on the real clock: a user who makes a call
    through it is served there too, and it tells that user's presence as the real clock sees it (the fake-clock
    activity lies in its future, so `online`), at its first sight of the user or later when its background loop
    is busy. So the users these tests follow on `a` never call the service: their rooms are made by others.
    """
    clock = FakeClock()
    made: list[Instance] = []
    for _ in range(2):
        nc = await nats.connect(nats_url)
        instance = Instance(nc, Hub(runtime.pool), Presence(runtime.pool, clock=clock, flush_seconds=30.0))
        await instance.hub.start(nc)
        await instance.presence.start(nc, flushing=False)
        made.append(instance)
    yield clock, made[0], made[1]
    for instance in made:
        await instance.presence.stop()
        await instance.hub.stop()
        await instance.nc.close()


async def group_room(client: httpx.AsyncClient, tenant: Tenant, members: list[str], *, by: str = "alice") -> str:
    response = await client.post("/rooms", json={"type": "group", "members": members},
                                 headers=tenant.as_user(by))
    assert response.status_code == 201, response.text
    room_id: str = response.json()["room_id"]
    return room_id


async def choose(runtime: Runtime, presence: Presence, tenant: Tenant, user_id: str, status: str, *,
                 text: str | None = None, expires_at: float | None = None) -> None:
    """What PUT /presence does on the instance `presence` belongs to."""
    event = PresenceStatusSet(status=status, status_text=text,  # type: ignore[arg-type]
                              expires_at=None if expires_at is None else datetime.fromtimestamp(expires_at, UTC))
    await runtime.appender.append(user_stream(tenant.tenant_id, user_id), [event], tenant_id=tenant.tenant_id,
                                  metadata=EventMetadata(tenant_id=tenant.tenant_id, actor=user_id),
                                  create_stream=True)
    presence.lapses(tenant.tenant_id, user_id, expires_at)
    await presence.tell(tenant.tenant_id, user_id)


async def statuses(tenant: Tenant, user_id: str, *instances: Instance) -> list[str]:
    return [(await i.presence.presences(tenant.tenant_id, [user_id]))[0].status for i in instances]


async def test_two_instances_agree_on_every_transition_and_tell_a_watcher_on_the_other(
    client: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    clock, a, b = instances
    room_id = await group_room(client, tenant, ["alice"], by="bob")  # alice is served by a alone
    bob = Watcher(tenant.tenant_id, "bob")
    await b.hub.connect(bob)
    await b.hub.subscribe(bob, room_id)  # b now follows alice's presence

    a.presence.seen(tenant.tenant_id, "alice")  # a call served by a
    await a.presence.flush()
    told = await bob.next()
    assert (told.user_id, told.status) == ("alice", "online")
    assert await statuses(tenant, "alice", a, b) == ["online", "online"]

    clock.now += 121  # two minutes without a call
    await a.presence.flush()
    assert (await bob.next()).status == "offline"
    assert await statuses(tenant, "alice", a, b) == ["offline", "offline"]

    await a.presence.connected(tenant.tenant_id, "alice")  # a WebSocket, then ten idle minutes
    await a.presence.flush()
    assert (await bob.next()).status == "online"
    clock.now += 601
    await a.presence.flush()
    assert (await bob.next()).status == "away"
    assert await statuses(tenant, "alice", a, b) == ["away", "away"]

    await choose(runtime, a.presence, tenant, "alice", "dnd", text="focus", expires_at=clock.now + 300)
    told = await bob.next()
    assert (told.status, told.status_text) == ("dnd", "focus")
    assert await statuses(tenant, "alice", a, b) == ["dnd", "dnd"]

    clock.now += 301  # the chosen status lapses, text with it: back to the automatic one
    await a.presence.flush()
    told = await bob.next()
    assert (told.status, told.status_text) == ("away", None)
    a.presence.seen(tenant.tenant_id, "alice")  # a frame on the idle socket
    await a.presence.flush()
    assert (await bob.next()).status == "online"

    await choose(runtime, a.presence, tenant, "alice", "offline")  # invisible
    told = await bob.next()
    assert told.status == "offline" and told.last_seen is not None and told.last_seen.timestamp() <= clock.now
    assert await statuses(tenant, "alice", a, b) == ["offline", "offline"]
    await choose(runtime, a.presence, tenant, "alice", "online")
    assert (await bob.next()).status == "online"  # automatic again: the socket is open and was used

    await a.presence.disconnected(tenant.tenant_id, "alice")  # online for two minutes more, then offline
    assert await statuses(tenant, "alice", a, b) == ["online", "online"]
    clock.now += 121
    await a.presence.flush()
    assert (await bob.next()).status == "offline"
    gone = await b.presence.offline_for(tenant.tenant_id, ["alice", "nobody"])
    assert gone == {"alice": pytest.approx(121), "nobody": None}


async def test_an_instance_hears_only_of_users_who_share_a_room_with_its_clients(
    client: httpx.AsyncClient, tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    _, a, b = instances
    room_id = await group_room(client, tenant, ["alice"], by="bob")
    await group_room(client, tenant, ["alice", "carol"], by="dora")  # nobody on b is with carol
    bob = Watcher(tenant.tenant_id, "bob")
    await b.hub.connect(bob)
    await b.hub.subscribe(bob, room_id)
    assert b.hub.watched() == 2  # alice and bob themselves
    a.presence.seen(tenant.tenant_id, "carol")
    a.presence.seen(tenant.tenant_id, "alice")
    await a.presence.flush()
    assert (await bob.next()).user_id == "alice"
    await asyncio.sleep(0.2)
    assert bob.frames.empty()
    b.hub.disconnect(bob, [room_id])
    assert b.hub.watched() == 0


async def test_a_socket_open_elsewhere_keeps_the_user_connected_for_offline_webhooks(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    clock, a, b = instances
    await a.presence.connected(tenant.tenant_id, "dora")
    assert await b.presence.connected_users(tenant.tenant_id, ["dora", "erin"]) == {"dora"}
    await a.presence.disconnected(tenant.tenant_id, "dora")
    clock.now += 12.5
    assert await b.presence.connected_users(tenant.tenant_id, ["dora"]) == set()
    assert await b.presence.offline_for(tenant.tenant_id, ["dora"]) == {"dora": pytest.approx(12.5)}


async def test_an_earlier_activity_written_later_never_replaces_a_later_one(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    clock, a, b = instances
    b.presence.seen(tenant.tenant_id, "hana")  # a call on b, and a minute later one on a
    clock.now += 60
    a.presence.seen(tenant.tenant_id, "hana")
    later = clock.now
    await a.presence.flush()
    await b.presence.flush()  # b writes its earlier activity after a wrote the later one
    kv = await a.nc.jetstream().key_value(presence_bucket())
    assert _float.decode((await kv.get(f"a.{tenant.tenant_id}.uhana")).value) == later
    clock.now += 100  # 100 s after the call on a: online for everyone, b included
    assert await statuses(tenant, "hana", a, b) == ["online", "online"]


async def test_closing_the_socket_on_one_instance_keeps_the_one_open_on_the_other(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    _, a, b = instances
    await a.presence.connected(tenant.tenant_id, "fred")
    await b.presence.connected(tenant.tenant_id, "fred")
    await b.presence.disconnected(tenant.tenant_id, "fred")
    assert await b.presence.connected_users(tenant.tenant_id, ["fred"]) == {"fred"}
    await a.presence.disconnected(tenant.tenant_id, "fred")
    assert await b.presence.offline_for(tenant.tenant_id, ["fred"]) == {"fred": pytest.approx(0.0, abs=0.5)}


async def test_many_users_read_at_once_share_one_read_of_the_instance_lease(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    _, a, b = instances
    users = [f"crowd{i}" for i in range(30)]
    for user_id in users:
        await a.presence.connected(tenant.tenant_id, user_id)
    assert await b.presence.connected_users(tenant.tenant_id, users) == set(users)


async def test_the_sockets_of_an_instance_that_stopped_renewing_lapse_with_its_lease(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    clock, a, b = instances
    await a.presence.connected(tenant.tenant_id, "gina")  # then a crashes: no flush, no close
    opened = clock.now
    clock.now += 3 * 30 - 1
    assert await b.presence.connected_users(tenant.tenant_id, ["gina"]) == {"gina"}
    clock.now = opened + 3 * 30 + 5
    assert await b.presence.connected_users(tenant.tenant_id, ["gina"]) == set()
    assert await b.presence.offline_for(tenant.tenant_id, ["gina"]) == {"gina": pytest.approx(5)}


async def test_a_flush_renews_one_lease_per_instance_not_one_per_socket(
    tenant: Tenant, instances: tuple[FakeClock, Instance, Instance]
) -> None:
    clock, a, _ = instances
    users = [f"many{i}" for i in range(20)]
    for user_id in users:
        await a.presence.connected(tenant.tenant_id, user_id)
    kv = await a.nc.jetstream().key_value(presence_bucket())
    lease = f"i.{a.presence.instance_id}"
    before = {u: (await kv.get(f"s.{tenant.tenant_id}.u{u}")).revision for u in users}
    lease_before = (await kv.get(lease)).revision
    clock.now += 30
    await a.presence.flush()
    assert {u: (await kv.get(f"s.{tenant.tenant_id}.u{u}")).revision for u in users} == before
    assert (await kv.get(lease)).revision > lease_before


# --- the API -------------------------------------------------------------------------------------------


async def test_a_chosen_status_with_text_is_what_others_read_by_id_and_by_room(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room_id = await group_room(client, tenant, ["bob"])
    body = {"status": "dnd", "status_text": "In a meeting", "status_emoji": ":calendar:", "clear_after_minutes": 30}
    put = await client.put("/presence", json=body, headers=tenant.as_user("alice"))
    assert put.status_code == 200, put.text
    assert {k: put.json()[k] for k in ("user_id", "status", "status_text", "status_emoji")} == {
        "user_id": "alice", "status": "dnd", "status_text": "In a meeting", "status_emoji": ":calendar:"}
    by_id = (await client.get("/presence", params={"user_ids": "alice,zed"}, headers=tenant.as_user("bob"))).json()
    assert [(p["user_id"], p["status"], p["status_text"]) for p in by_id] == [
        ("alice", "dnd", "In a meeting"), ("zed", "offline", None)]
    assert by_id[1]["last_seen"] is None
    by_room = (await client.get("/presence", params={"room_id": room_id}, headers=tenant.as_user("bob"))).json()
    assert [(p["user_id"], p["status"]) for p in by_room] == [("alice", "dnd"), ("bob", "online")]
    members = (await client.get(f"/rooms/{room_id}/members", headers=tenant.as_user("bob"))).json()
    assert [(m["user_id"], m["status"]) for m in members] == [("alice", "dnd"), ("bob", "online")]


async def test_online_lists_the_tenants_recently_active_users_but_not_invisible_ones(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await client.get("/rooms", headers=tenant.as_user("alice"))
    await client.get("/rooms", headers=tenant.as_user("bob"))
    await client.get("/rooms", headers=other_tenant.as_user("mallory"))
    online = (await client.get("/presence/online", headers=tenant.as_user("alice"))).json()
    assert [(p["user_id"], p["status"]) for p in online] == [("alice", "online"), ("bob", "online")]
    await client.put("/presence", json={"status": "offline"}, headers=tenant.as_user("bob"))
    online = (await client.get("/presence/online", headers=tenant.as_user("alice"))).json()
    assert [p["user_id"] for p in online] == ["alice"]


@pytest.mark.parametrize(("params", "field"), [
    ({}, "user_ids"), ({"user_ids": "a", "room_id": "room_x"}, "user_ids"), ({"user_ids": ",,"}, "user_ids"),
    ({"user_ids": ",".join(f"u{i}" for i in range(101))}, "user_ids"),
])
async def test_reading_presence_needs_exactly_one_of_user_ids_and_room_id(
    client: httpx.AsyncClient, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    error = error_of(await client.get("/presence", params=params, headers=tenant.as_user("alice")), 400)
    assert error["field"] == field


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "busy"}, "status"), ({"status": "away", "clear_after_minutes": 0}, "clear_after_minutes"),
    ({"status": "away", "status_text": "x" * 101}, "status_text"), ({"status": "away", "mood": 1}, "mood"),
])
async def test_a_bad_status_is_a_400_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, object], field: str
) -> None:
    error = error_of(await client.put("/presence", json=body, headers=tenant.as_user("alice")), 400)
    assert error["field"] == field


async def test_a_room_the_caller_is_not_in_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id = await group_room(client, tenant, ["bob"])
    response = await client.get("/presence", params={"room_id": room_id}, headers=tenant.as_user("carol"))
    assert error_of(response, 403)["code"] == "NOT_A_MEMBER"


@pytest.fixture(scope="module")
async def live_url(app: Starlette) -> AsyncIterator[str]:
    async for url in serving(app):
        yield url


async def test_a_websocket_client_gets_presence_updated_when_a_room_mate_chooses_a_status(
    client: httpx.AsyncClient, tenant: Tenant, live_url: str
) -> None:
    room_id = await group_room(client, tenant, ["bob"])
    token = (await client.post("/tokens", headers=tenant.as_user("bob"))).json()["token"]
    async with connect(f"ws://{live_url}/ws?token={token}") as ws:
        await ws.send(json.dumps({"type": "sync", "rooms": {room_id: 0}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "synced":
            pass
        await client.put("/presence", json={"status": "away", "status_text": "brb"}, headers=tenant.as_user("alice"))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "presence.updated":
            pass
    assert (frame["user_id"], frame["status"], frame["status_text"]) == ("alice", "away", "brb")


@pytest.fixture(scope="module")
async def second_instance(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second service instance (its own runtime: pool, NATS connection, hub, presence) on the same servers."""
    rt = await start_runtime(settings)
    await asyncio.wait_for(rt.realtime.ready.wait(), 30)
    transport = httpx.ASGITransport(app=create_app(settings, runtime=rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://second.test") as c:
        yield c
    await stop_runtime(rt)


async def test_a_status_chosen_on_one_instance_is_read_and_told_on_the_other(
    client: httpx.AsyncClient, second_instance: httpx.AsyncClient, tenant: Tenant, live_url: str
) -> None:
    room_id = await group_room(client, tenant, ["bob"])
    token = (await client.post("/tokens", headers=tenant.as_user("bob"))).json()["token"]
    async with connect(f"ws://{live_url}/ws?token={token}") as ws:  # bob on the first instance
        await ws.send(json.dumps({"type": "sync", "rooms": {room_id: 0}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "synced":
            pass
        put = await second_instance.put("/presence", json={"status": "dnd"}, headers=tenant.as_user("alice"))
        assert put.status_code == 200, put.text
        told = []  # alice's first call may be told as "online" before the status
        while not told or told[-1] != ("alice", "dnd"):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "presence.updated":
                told.append((frame["user_id"], frame["status"]))
        assert set(told) <= {("alice", "online"), ("alice", "dnd")}
        first = (await client.get("/presence", params={"room_id": room_id}, headers=tenant.as_user("bob"))).json()
        second = (await second_instance.get("/presence", params={"room_id": room_id},
                                            headers=tenant.as_user("bob"))).json()
    # bob's socket is open on the first instance: the second reads it from the bucket.
    assert [(p["user_id"], p["status"]) for p in first] == [("alice", "dnd"), ("bob", "online")]
    assert [(p["user_id"], p["status"]) for p in second] == [(p["user_id"], p["status"]) for p in first]
