"""`roomlog serve` with the embedded default restarts its PostgreSQL or nats-server when one is SIGKILLed.

One module-scoped run: start `roomlog --data-dir D serve`, create a tenant with the CLI, keep sending and reading
messages in the background, SIGKILL the postmaster (found by its pid file in the data dir) and wait for /health
to be ok again, then do the same to nats-server. Every request during the run is recorded: a lost database
connection must be answered 503, never 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.system.conftest import Processes, Serve, alive, embedded_data_dir, roomlog_env, run_roomlog, wait_until_gone

RECOVERY_SECONDS = 20.0
GONE_SECONDS = 3.0


def pid_in(path: Path) -> int:
    """The pid on the first line of a pid file (nats-server.pid, postmaster.pid)."""
    return int(path.read_text().splitlines()[0].strip())


@dataclass
class Load:
    """Requests made in the background while the servers are killed: their statuses and any 500 bodies."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    transport_errors: int = 0


@dataclass
class Kill:
    old_pid: int
    new_pid: int
    killed_alive_after: bool
    recovery_seconds: float
    health: dict[str, Any]
    sent_after: httpx.Response


@dataclass
class Run:
    postgres: Kill
    nats: Kill
    load: Load
    stderr: str
    exit_code: int
    left_after_sigint: list[int]


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """The data directory of every run in this module, removed at the end."""
    with embedded_data_dir("supervisor") as path:
        yield path


@pytest.fixture(scope="module")
def processes(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("supervisor-logs")) as procs:
        yield procs


async def wait_ok(serve: Serve, *, seconds: float) -> tuple[float, dict[str, Any]]:
    """Seconds until /health is 200 with status ok (NATS connected, real-time ready), and that body."""
    started = time.monotonic()
    body: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=2.0) as client:
        while time.monotonic() - started < seconds:
            with contextlib.suppress(httpx.TransportError, ValueError):
                response = await client.get("/health")
                body = response.json()
                if response.status_code == 200 and body.get("status") == "ok":
                    return time.monotonic() - started, body
            await asyncio.sleep(0.1)
    raise AssertionError(f"/health not ok {seconds}s after the kill ({body}):\n{serve.stderr()[-4000:]}")


async def wait_health_down(serve: Serve, *, seconds: float = 5.0) -> None:
    """Wait until /health notices the kill (not ok), so a recovery is measured from a real outage."""
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=2.0) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError, ValueError):
                response = await client.get("/health")
                if response.status_code != 200 or response.json().get("status") != "ok":
                    return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def background_load(serve: Serve, tenant: Tenant, room_id: str) -> AsyncIterator[Load]:
    """Keep sending and reading messages until the block ends; record what every request got."""
    load = Load()
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        headers = tenant.as_user("alice")
        async with httpx.AsyncClient(base_url=serve.base_url, timeout=5.0) as client:
            while not stop.is_set():
                try:
                    if n % 2:
                        response = await client.get(f"/rooms/{room_id}/messages", headers=headers)
                    else:
                        response = await client.post(f"/rooms/{room_id}/messages", headers=headers,
                                                     json={"content": "load", "client_msg_id": uuid.uuid4().hex})
                except httpx.TransportError:
                    load.transport_errors += 1
                    await asyncio.sleep(0.05)
                    continue
                load.statuses[response.status_code] += 1
                if response.status_code >= 500 and response.status_code != 503:
                    load.errors.append(response.text)
                await asyncio.sleep(0.05 if response.status_code == 503 else 0.01)

    tasks = [asyncio.create_task(worker(n)) for n in range(4)]
    try:
        yield load
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def kill_and_recover(serve: Serve, tenant: Tenant, room_id: str, pid_file: Path) -> Kill:
    """SIGKILL the process named in `pid_file`; measure until /health is ok again and send one message."""
    old_pid = pid_in(pid_file)
    os.kill(old_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    await wait_health_down(serve)
    await wait_ok(serve, seconds=RECOVERY_SECONDS)
    recovery = time.monotonic() - killed_at
    _, health = await wait_ok(serve, seconds=1.0)
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        sent = await client.post(f"/rooms/{room_id}/messages", json={"content": "after the kill"},
                                 headers=tenant.as_user("alice"))
    return Kill(old_pid, pid_in(pid_file), alive(old_pid), recovery, health, sent)


@pytest.fixture(scope="module")
async def run(data_dir: Path, processes: Processes) -> Run:
    serve = processes.serve(env=roomlog_env(ROOMLOG_ACCESS_LOG="false"), data_dir=data_dir)
    await serve.wait_healthy()
    created = await run_roomlog("--data-dir", str(data_dir), "tenant", "create", "acme", "--rate-limit", "0",
                                "--send-rate-limit", "0", env=roomlog_env())
    assert created.returncode == 0, created.stderr
    tenant = Tenant(*(re.search(rf"{label}:\s*(\S+)", created.stdout)[1]  # type: ignore[index]
                      for label in ("tenant_id", "api_key")))
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        room = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("alice"))
    assert room.status_code == 201, room.text
    room_id = room.json()["room_id"]

    async with background_load(serve, tenant, room_id) as load:
        await asyncio.sleep(0.5)
        postgres = await kill_and_recover(serve, tenant, room_id, data_dir / "postgres" / "postmaster.pid")
        await asyncio.sleep(0.5)
        nats = await kill_and_recover(serve, tenant, room_id, data_dir / "nats" / "nats-server.pid")
        await asyncio.sleep(0.5)
    exit_code = await serve.signal_and_wait(signal.SIGINT)
    left = await wait_until_gone(str(data_dir), seconds=GONE_SECONDS)
    print(f"recovery: postgres {postgres.recovery_seconds:.2f}s, nats {nats.recovery_seconds:.2f}s;"
          f" statuses {dict(load.statuses)}")
    return Run(postgres, nats, load, serve.stderr(), exit_code, left)


def test_a_killed_postgres_is_restarted_and_health_is_ok_again(run: Run) -> None:
    assert run.postgres.new_pid != run.postgres.old_pid
    assert not run.postgres.killed_alive_after
    assert run.postgres.health["db_writable"] is True
    assert run.postgres.recovery_seconds < RECOVERY_SECONDS


def test_a_message_send_works_after_postgres_was_restarted(run: Run) -> None:
    assert run.postgres.sent_after.status_code == 201, run.postgres.sent_after.text


def test_a_killed_nats_server_is_restarted_and_nats_is_connected_again(run: Run) -> None:
    assert run.nats.new_pid != run.nats.old_pid
    assert run.nats.health["nats_connected"] is True
    assert run.nats.health["realtime_ready"] is True


def test_a_message_send_works_after_nats_server_was_restarted(run: Run) -> None:
    assert run.nats.sent_after.status_code == 201, run.nats.sent_after.text


def test_every_request_during_the_outages_is_answered_201_200_or_503(run: Run) -> None:
    assert run.load.errors == []
    assert set(run.load.statuses) <= {200, 201, 503}, run.load.statuses
    assert run.load.statuses[201] > 0


def test_each_restart_is_logged(run: Run) -> None:
    # The two this run killed, in order (a busy machine may also see the object store restarted; it counts
    # as the supervisor working, not as one of these).
    restarts = [line for line in run.stderr.splitlines() if 'event="embedded server restarted"' in line
                and ("server=postgres" in line or "server=nats-server" in line)]
    assert ["server=postgres" in line for line in restarts] == [True, False], restarts
    assert "server=nats-server" in restarts[1]


def test_sigint_after_the_restarts_stops_every_embedded_server(run: Run) -> None:
    assert run.exit_code == 0
    assert run.left_after_sigint == []
