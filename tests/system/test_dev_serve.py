"""A newcomer's first run: `python3 dev.py serve --data-dir D`, the printed hint, and Ctrl-C.

One module-scoped run: start dev.py in a process group of its own (as a terminal runs a foreground job),
with the global `--data-dir` after `serve` and a PATH that does not hold the virtualenv, run the command the
first-start hint prints, send a message with the key it gave, then send SIGINT to the whole group (what
Ctrl-C does) and read what was logged.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.cli.embedded import free_port
from tests.conftest import Tenant
from tests.system.conftest import Completed, Processes, Serve, embedded_data_dir, roomlog_env, wait_until_gone

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GONE_SECONDS = 3.0


@dataclass
class FirstRun:
    data_dir: Path
    hint: list[str]
    created: Completed
    sent: httpx.Response
    exit_code: int
    stderr: str
    left_after_sigint: list[int]


def without_venv_path() -> dict[str, str]:
    """Our environment without roomlog settings and without the virtualenv's bin directory on PATH."""
    env = roomlog_env(ROOMLOG_ACCESS_LOG="false")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN)
    env.pop("VIRTUAL_ENV", None)
    return env


def hinted_command(stderr: str) -> list[str]:
    """The command the first-start hint says to run."""
    found = re.search(r"get its API key with:\n\s+(.+)\n", stderr)
    assert found is not None, stderr
    return shlex.split(found[1])


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """The data directory of every run in this module, removed at the end."""
    with embedded_data_dir("dev-serve") as path:
        yield path


@pytest.fixture(scope="module")
def processes(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("dev-serve-logs")) as procs:
        procs.data_dirs.append(data_dir)
        yield procs


def start_dev_serve(processes: Processes, data_dir: Path, env: dict[str, str]) -> Serve:
    """`python3 dev.py serve --data-dir D --port P` leading a process group of its own, like a terminal job."""
    port = free_port()
    out, err = processes.log_dir / "dev.out", processes.log_dir / "dev.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            ["python3", "dev.py", "serve", "--data-dir", str(data_dir), "--port", str(port)],
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )
    serve = Serve(proc, port, out, err)
    processes.serves.append(serve)
    return serve


@pytest.fixture(scope="module")
async def first_run(data_dir: Path, processes: Processes) -> FirstRun:
    env = without_venv_path()
    serve = start_dev_serve(processes, data_dir, env)
    proc = serve.proc
    await serve.wait_healthy()

    hint = hinted_command(serve.stderr())
    done = await asyncio.to_thread(subprocess.run, hint, cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=60)
    created = Completed(done.returncode, done.stdout, done.stderr)
    assert created.returncode == 0, created.stderr
    tenant = Tenant(*(re.search(rf"{label}:\s*(\S+)", created.stdout)[1]  # type: ignore[index]
                      for label in ("tenant_id", "api_key")))
    async with httpx.AsyncClient(base_url=serve.base_url, timeout=10.0) as client:
        room = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("admin"))
        assert room.status_code == 201, room.text
        sent = await client.post(f"/rooms/{room.json()['room_id']}/messages", json={"content": "hi"},
                                 headers=tenant.as_user("admin"))

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals its whole foreground process group
    exit_code = await asyncio.to_thread(proc.wait, 20)
    left = await wait_until_gone(str(data_dir), seconds=GONE_SECONDS)
    return FirstRun(data_dir, hint, created, sent, exit_code, serve.stderr(), left)


def test_global_flags_are_accepted_after_the_serve_command(first_run: FirstRun) -> None:
    assert "unrecognized arguments" not in first_run.stderr
    assert f"pgdata={first_run.data_dir}/postgres" in first_run.stderr


def test_the_first_start_hint_runs_as_printed_without_roomlog_on_path(first_run: FirstRun) -> None:
    assert first_run.hint[0] != "roomlog"
    assert first_run.created.stdout.startswith("tenant_id: tn_"), first_run.created.stdout
    assert first_run.sent.status_code == 201, first_run.sent.text


def test_a_one_shot_command_beside_a_live_server_does_not_report_servers_stopped(first_run: FirstRun) -> None:
    assert "stopped" not in first_run.created.stderr, first_run.created.stderr


def test_ctrl_c_exits_with_code_zero_and_stops_every_embedded_server(first_run: FirstRun) -> None:
    assert first_run.exit_code == 0
    assert first_run.left_after_sigint == []
    assert "embedded servers stopped" in first_run.stderr


def test_ctrl_c_logs_no_error_warning_or_traceback(first_run: FirstRun) -> None:
    bad = [line for line in first_run.stderr.splitlines()
           if re.search(r"level=(warning|error|critical)|Traceback|KeyboardInterrupt|Server Shutdown|unexpected EOF",
                        line)]
    assert bad == []
