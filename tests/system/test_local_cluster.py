"""deploy/local-cluster.py: PostgreSQL, a 3-node NATS JetStream cluster and two roomlog instances on one machine.

One cluster for the module, brought up on free ports and used by the tests in order: both instances
healthy, streams with three replicas, a message crossing instances, a send after the events stream's
leader node was SIGKILLed, and finally `down`, which must leave no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from schemas.events import RecordedEvent
from service.realtime.jetstream import DELIVERIES_STREAM, EVENTS_STREAM, room_subject
from tests.conftest import Tenant
from tests.system.conftest import ROOMLOG, alive, embedded_data_dir, pids_mentioning, roomlog_env, wait_until_gone

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local-cluster.py"
INSTANCES = 2
# Every port the script opens, as offsets from one base: NATS client, routes and monitoring ports of the
# three nodes (offsets from --nats-base-port), then the instances' HTTP ports (--base-port = base + 6000).
NATS_OFFSETS = (0, 1, 2, 2000, 2001, 2002, 4000, 4001, 4002)
HTTP_OFFSET = 6000
UP_SECONDS = 90.0
JETSTREAM_SECONDS = 20.0


@dataclass
class Cluster:
    """What `up` started: its data directory and the plan it saved there (cluster.json)."""

    data_dir: Path
    plan: dict[str, Any]

    @property
    def instance_urls(self) -> list[str]:
        return list(self.plan["instance_urls"])

    @property
    def database_url(self) -> str:
        return str(self.plan["database_url"])

    def node_pid(self, name: str) -> int:
        return int((self.data_dir / "nats" / name / "nats-server.pid").read_text().split()[0])

    def nats_urls(self, *, without: str = "") -> list[str]:
        return [f"nats://127.0.0.1:{n['client_port']}" for n in self.plan["nodes"] if n["name"] != without]

    def recorded_pids(self) -> list[int]:
        """Every pid the script's pid files name (instances, NATS nodes, the postmaster)."""
        files = [*self.data_dir.glob("roomlog-*.pid"), *self.data_dir.glob("nats/node-*/nats-server.pid"),
                 self.data_dir / "postgres" / "postmaster.pid"]
        return [int(f.read_text().split()[0]) for f in files if f.exists()]


def free_base(offsets: tuple[int, ...]) -> int:
    """A port p such that p + every offset is free on 127.0.0.1 right now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 58_000)
        if all(_port_free(base + offset) for offset in offsets):
            return base
    raise RuntimeError("no free port range found")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run deploy/local-cluster.py with this interpreter and no roomlog settings from our environment."""
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=roomlog_env(ROOMLOG_ACCESS_LOG="false"),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """`local-cluster.py up --instances 2` on free ports; `down` (and a SIGKILL for any leftover) at the end."""
    with embedded_data_dir("cluster") as data_dir:
        yield from _cluster(data_dir)


def _cluster(data_dir: Path) -> Iterator[Cluster]:
    base = free_base((*NATS_OFFSETS, *(HTTP_OFFSET + i for i in range(INSTANCES))))
    up = run_script("up", "--instances", str(INSTANCES), "--data-dir", str(data_dir),
                    "--base-port", str(base + HTTP_OFFSET), "--nats-base-port", str(base), timeout=UP_SECONDS)
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        plan = json.loads((data_dir / "cluster.json").read_text())
        yield Cluster(data_dir, plan)
    finally:
        run_script("down", "--data-dir", str(data_dir), timeout=60)
        for pid in pids_mentioning(str(data_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster_tenant(cluster: Cluster) -> Tenant:
    """A tenant made with `roomlog tenant create` against the cluster's database."""
    created = subprocess.run([ROOMLOG, "tenant", "create", "cluster-test"], capture_output=True, text=True,
                             env=roomlog_env(database_url=cluster.database_url), timeout=60)
    assert created.returncode == 0, created.stderr
    printed = dict(line.split(":", 1) for line in created.stdout.splitlines()[:2])
    return Tenant(printed["tenant_id"].strip(), printed["api_key"].strip())


async def create_room(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("ann"))
    assert response.status_code == 201, response.text
    return str(response.json()["room_id"])


async def send(client: httpx.AsyncClient, tenant: Tenant, room_id: str, content: str) -> int:
    response = await client.post(f"/rooms/{room_id}/messages", json={"content": content},
                                 headers=tenant.as_user("ann"))
    assert response.status_code == 201, response.text
    return int(response.json()["seq"])


async def contents(client: httpx.AsyncClient, tenant: Tenant, room_id: str) -> list[str]:
    response = await client.get(f"/rooms/{room_id}/messages", headers=tenant.as_user("bob"))
    assert response.status_code == 200, response.text
    return [m["content"] for m in response.json()]


async def last_in_jetstream(servers: list[str], subject: str, *, seq: int) -> RecordedEvent:
    """Wait until the EVENTS stream's last message on `subject` is the room event `seq`; that event."""
    nc = await nats.connect(servers, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=2)
        deadline = time.monotonic() + JETSTREAM_SECONDS
        while True:
            with contextlib.suppress(NotFoundError, TimeoutError, nats.errors.Error):
                msg = await js.get_last_msg(EVENTS_STREAM, subject)
                event = msgspec.json.decode(msg.data or b"null", type=RecordedEvent | None)
                if event is not None and event.seq == seq:
                    return event
            assert time.monotonic() < deadline, f"event {seq} not in {EVENTS_STREAM} after {JETSTREAM_SECONDS}s"
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def test_up_starts_every_instance_healthy_with_nats_connected(cluster: Cluster) -> None:
    bodies = []
    async with httpx.AsyncClient(timeout=5) as client:
        for url in cluster.instance_urls:
            response = await client.get(f"{url}/health")
            bodies.append((response.status_code, response.json()))
    assert len(bodies) == INSTANCES
    assert all(status == 200 and body["status"] == "ok" and body["nats_connected"] for status, body in bodies), bodies


async def test_jetstream_streams_have_three_current_replicas(cluster: Cluster) -> None:
    nc = await nats.connect(cluster.nats_urls(), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        infos = [await js.stream_info(name) for name in (EVENTS_STREAM, DELIVERIES_STREAM)]
    finally:
        await nc.close()
    for info in infos:
        assert info.config.num_replicas == 3
        assert info.cluster is not None and info.cluster.leader is not None
        followers = info.cluster.replicas or []
        assert len(followers) == 2 and all(peer.current for peer in followers), info.cluster


async def test_a_message_sent_through_one_instance_is_read_through_the_other(
    cluster: Cluster, cluster_tenant: Tenant
) -> None:
    first, second = cluster.instance_urls
    content = f"across instances {uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=first, timeout=10) as one, httpx.AsyncClient(base_url=second) as two:
        room_id = await create_room(one, cluster_tenant)
        await send(one, cluster_tenant, room_id, content)
        assert content in await contents(two, cluster_tenant, room_id)


async def test_a_send_after_the_events_stream_leader_died_reaches_jetstream_and_both_instances(
    cluster: Cluster, cluster_tenant: Tenant
) -> None:
    first, second = cluster.instance_urls
    nc = await nats.connect(cluster.nats_urls(), connect_timeout=2)
    try:
        info = await nc.jetstream(timeout=5).stream_info(EVENTS_STREAM)
    finally:
        await nc.close()
    assert info.cluster is not None and info.cluster.leader is not None
    leader = info.cluster.leader
    os.kill(cluster.node_pid(leader), signal.SIGKILL)

    content = f"after losing {leader} {uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=first, timeout=10) as one, httpx.AsyncClient(base_url=second) as two:
        room_id = await create_room(two, cluster_tenant)
        seq = await send(two, cluster_tenant, room_id, content)
        assert content in await contents(one, cluster_tenant, room_id)
        event = await last_in_jetstream(cluster.nats_urls(without=leader),
                                        room_subject(cluster_tenant.tenant_id, room_id), seq=seq)
    assert event.stream_id == room_id and getattr(event.event, "content", None) == content


async def test_down_stops_every_process_it_started(cluster: Cluster) -> None:
    pids = cluster.recorded_pids()
    assert len(pids) == INSTANCES + 3 + 1  # instances, NATS nodes (one perhaps killed already), postmaster
    down = run_script("down", "--data-dir", str(cluster.data_dir), timeout=60)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if alive(pid)] == []
    # What the stopped processes started themselves (their own children) may take a moment more to exit.
    assert await wait_until_gone(str(cluster.data_dir), seconds=10) == []
