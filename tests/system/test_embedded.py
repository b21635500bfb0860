"""The embedded default: `roomlog --data-dir D serve` without DATABASE_URL / NATS_URL runs its own servers.

Three module-scoped runs on one data directory, in order: a first start (tenant created from the CLI, a message
sent, then SIGINT), a second start that must find the data again, and a start after the serve process was
SIGKILLed (which orphans its embedded PostgreSQL and nats-server).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.system.conftest import (
    Completed,
    Processes,
    Serve,
    alive,
    embedded_data_dir,
    roomlog_env,
    run_roomlog,
    wait_until_gone,
)

# Once `serve` has exited nothing stops the embedded servers any more: a short grace is enough.
GONE_SECONDS = 3.0
CONTENT = "hello from the embedded default"


def embedded_env() -> dict[str, str]:
    """Our environment with every roomlog setting removed, so that serve starts embedded servers."""
    return roomlog_env()


def pid_in(path: Path) -> int:
    """The pid on the first line of a pid file (nats-server.pid, postmaster.pid)."""
    return int(path.read_text().splitlines()[0].strip())


@dataclass
class FirstStart:
    health: dict[str, Any]
    stderr: str
    tenant_create: Completed
    tenant: Tenant
    room_id: str
    sent: httpx.Response
    exit_code: int
    left_after_sigint: list[int]


@dataclass
class SecondStart:
    health: dict[str, Any]
    stderr: str
    messages: list[dict[str, Any]]
    left_after_sigint: list[int]


@dataclass
class AfterSigkill:
    killed_exit_code: int
    nats_pid: int
    postgres_pid: int
    orphans_alive: tuple[bool, bool]
    health: dict[str, Any]
    messages: list[dict[str, Any]]
    old_nats_alive: bool
    new_nats_pid: int
    new_postgres_pid: int
    left_after_sigint: list[int]


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """The data directory of every run in this module, removed at the end."""
    with embedded_data_dir("embedded") as path:
        yield path


@pytest.fixture(scope="module")
def processes(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """The module's processes; whatever they leave behind is killed before `data_dir` is removed."""
    with Processes(tmp_path_factory.mktemp("embedded-logs")) as procs:
        yield procs


def printed(text: str, label: str) -> str:
    """The value printed after `label:` in a command's output."""
    found = re.search(rf"{label}:\s*(\S+)", text)
    assert found is not None, text
    return found[1]


async def messages_of(serve: Serve, tenant: Tenant, room_id: str) -> list[dict[str, Any]]:
    """The room's messages as alice sees them."""
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        response = await client.get(f"/rooms/{room_id}/messages", headers=tenant.as_user("alice"))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


@pytest.fixture(scope="module")
async def first_start(data_dir: Path, processes: Processes) -> FirstStart:
    """Start on an empty data dir, create a tenant with the CLI, send a message, then SIGINT."""
    serve = processes.serve(env=embedded_env(), data_dir=data_dir)
    health = await serve.wait_healthy()
    created = await run_roomlog("--data-dir", str(data_dir), "tenant", "create", "acme", env=embedded_env())
    assert created.returncode == 0, created.stderr
    tenant = Tenant(printed(created.stdout, "tenant_id"), printed(created.stdout, "api_key"))
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        room = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("alice"))
        assert room.status_code == 201, room.text
        room_id = room.json()["room_id"]
        sent = await client.post(f"/rooms/{room_id}/messages", json={"content": CONTENT},
                                 headers=tenant.as_user("alice"))
    exit_code = await serve.signal_and_wait(signal.SIGINT)
    left = await wait_until_gone(str(data_dir), seconds=GONE_SECONDS)
    return FirstStart(health, serve.stderr(), created, tenant, room_id, sent, exit_code, left)


@pytest.fixture(scope="module")
async def second_start(first_start: FirstStart, data_dir: Path, processes: Processes) -> SecondStart:
    """Start again on the same data dir, read the first run's room, then SIGINT."""
    serve = processes.serve(env=embedded_env(), data_dir=data_dir)
    health = await serve.wait_healthy()
    messages = await messages_of(serve, first_start.tenant, first_start.room_id)
    await serve.signal_and_wait(signal.SIGINT)
    left = await wait_until_gone(str(data_dir), seconds=GONE_SECONDS)
    return SecondStart(health, serve.stderr(), messages, left)


@pytest.fixture(scope="module")
async def after_sigkill(
    first_start: FirstStart, second_start: SecondStart, data_dir: Path, processes: Processes
) -> AfterSigkill:
    """SIGKILL a serve process, start another on the same data dir, then SIGINT that one."""
    killed = processes.serve(env=embedded_env(), data_dir=data_dir)
    await killed.wait_healthy()
    nats_pid = pid_in(data_dir / "nats" / "nats-server.pid")
    postgres_pid = pid_in(data_dir / "postgres" / "postmaster.pid")
    killed_exit_code = await killed.signal_and_wait(signal.SIGKILL)
    orphans_alive = (alive(nats_pid), alive(postgres_pid))

    serve = processes.serve(env=embedded_env(), data_dir=data_dir)
    health = await serve.wait_healthy()
    messages = await messages_of(serve, first_start.tenant, first_start.room_id)
    new_nats_pid = pid_in(data_dir / "nats" / "nats-server.pid")
    new_postgres_pid = pid_in(data_dir / "postgres" / "postmaster.pid")
    old_nats_alive = alive(nats_pid)
    await serve.signal_and_wait(signal.SIGINT)
    left = await wait_until_gone(str(data_dir), seconds=GONE_SECONDS)
    return AfterSigkill(
        killed_exit_code, nats_pid, postgres_pid, orphans_alive, health, messages, old_nats_alive,
        new_nats_pid, new_postgres_pid, left,
    )


def test_first_start_becomes_healthy_with_nats_connected_and_db_writable(first_start: FirstStart) -> None:
    assert first_start.health["status"] == "ok"
    assert first_start.health["nats_connected"] is True
    assert first_start.health["db_writable"] is True


def test_first_start_prints_how_to_get_an_api_key(first_start: FirstStart) -> None:
    assert "tenant create" in first_start.stderr
    assert "X-API-Key" in first_start.stderr


def test_tenant_create_prints_a_key_that_the_running_server_accepts(first_start: FirstStart) -> None:
    assert first_start.tenant.tenant_id.startswith("tn_")
    assert first_start.sent.status_code == 201, first_start.sent.text
    assert first_start.sent.json()["seq"] >= 1


def test_sigint_stops_the_server_and_its_embedded_servers(first_start: FirstStart) -> None:
    assert first_start.left_after_sigint == []


def test_sigint_is_a_clean_shutdown_with_exit_code_zero(first_start: FirstStart) -> None:
    assert first_start.exit_code == 0
    assert "KeyboardInterrupt" not in first_start.stderr
    assert "embedded servers stopped" in first_start.stderr


def test_second_start_finds_the_room_and_message_again(second_start: SecondStart) -> None:
    assert second_start.health["status"] == "ok"
    assert [m["content"] for m in second_start.messages] == [CONTENT]


def test_second_start_prints_no_api_key_hint(second_start: SecondStart) -> None:
    assert "no tenants yet" not in second_start.stderr


def test_second_start_stops_every_embedded_server_on_sigint(second_start: SecondStart) -> None:
    assert second_start.left_after_sigint == []


def test_sigkill_of_serve_orphans_its_embedded_servers(after_sigkill: AfterSigkill) -> None:
    assert after_sigkill.killed_exit_code == -signal.SIGKILL
    assert after_sigkill.orphans_alive == (True, True)


def test_start_after_sigkill_is_healthy_and_keeps_the_data(after_sigkill: AfterSigkill) -> None:
    assert after_sigkill.health["nats_connected"] is True
    assert after_sigkill.health["db_writable"] is True
    assert [m["content"] for m in after_sigkill.messages] == [CONTENT]


def test_start_after_sigkill_replaces_the_orphaned_nats_server(after_sigkill: AfterSigkill) -> None:
    assert not after_sigkill.old_nats_alive
    assert after_sigkill.new_nats_pid != after_sigkill.nats_pid


def test_start_after_sigkill_reuses_the_orphaned_postgres(after_sigkill: AfterSigkill) -> None:
    assert after_sigkill.new_postgres_pid == after_sigkill.postgres_pid


def test_sigint_after_a_restart_from_sigkill_stops_every_embedded_server(after_sigkill: AfterSigkill) -> None:
    assert after_sigkill.left_after_sigint == []
