"""Real `roomlog` processes: `roomlog serve` started as a subprocess, one-shot commands, and their clean-up.

Every process a test starts is registered with a `Processes` object, which kills whatever is still running
when the test (or module) ends — including embedded PostgreSQL / nats-server orphaned by a SIGKILL, found
by the data directory on their command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from service.cli.embedded import free_port

ROOMLOG = str(Path(sys.executable).parent / "roomlog")
READY_SECONDS = 40.0
STOP_SECONDS = 15.0
COMMAND_SECONDS = 60.0



@contextlib.contextmanager
def embedded_data_dir(prefix: str) -> Iterator[Path]:
    """A data directory for embedded servers, removed afterwards.

    Not under pytest's basetemp: run as root, embedded PostgreSQL runs as another user, and any pytest session
    starting meanwhile resets /tmp/pytest-of-root to mode 0700, locking that user out of its data directory.
    """
    top = Path(tempfile.mkdtemp(prefix=f"roomlog-{prefix}-"))
    try:
        yield top / "data"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def roomlog_env(*, database_url: str | None = None, nats_url: str | None = None, **extra: str) -> dict[str, str]:
    """Our environment without any roomlog setting, plus the given URLs and ROOMLOG_* variables."""
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "NATS_URL") and not k.startswith("ROOMLOG_")
    }
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if nats_url is not None:
        env["NATS_URL"] = nats_url
    if database_url is not None and nats_url is not None:
        # On the session's servers, a serve would start a SeaweedFS of its own: point it at a closed port
        # instead (media calls answer 503); tests of media pass the session's object store.
        env["ROOMLOG_S3_URL"] = "http://127.0.0.1:9"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Completed:
    """The outcome of a one-shot `roomlog` command."""

    returncode: int
    stdout: str
    stderr: str


async def run_roomlog(*args: str, env: dict[str, str]) -> Completed:
    """Run `roomlog ARGS` to completion (at most COMMAND_SECONDS) and capture its output."""
    proc = await asyncio.create_subprocess_exec(
        ROOMLOG, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(COMMAND_SECONDS):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Completed(proc.returncode, out.decode(), err.decode())


@dataclass
class Serve:
    """One `roomlog serve` process, its port and its captured output."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    async def wait_healthy(self) -> dict[str, Any]:
        """Poll GET /health until it reports `ok` (database, NATS and real-time delivery all ready); return its body.

        Fails if the process exits first.
        """
        try:
            async with asyncio.timeout(READY_SECONDS):
                return await self._poll_health()
        except TimeoutError:
            raise AssertionError(f"roomlog serve not healthy after {READY_SECONDS}s:\n{self.stderr()}") from None

    async def _poll_health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"roomlog serve exited with {self.proc.returncode}:\n{self.stderr()}")
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get("/health")
                    body: dict[str, Any] = response.json()
                    if response.status_code == 200 and body.get("status") == "ok":
                        return body
                await asyncio.sleep(0.1)

    async def signal_and_wait(self, sig: signal.Signals) -> int:
        """Send `sig` and wait (at most STOP_SECONDS) for the process to exit; return its exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            return await asyncio.to_thread(self.proc.wait, STOP_SECONDS)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"roomlog serve still running {STOP_SECONDS}s after {sig.name}") from None


def pids_mentioning(text: str) -> list[int]:
    """Processes (other than this one) whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and not is_zombie(int(entry.name)):
            found.append(int(entry.name))
    return found


def is_zombie(pid: int) -> bool:
    """Whether the process has exited and only waits to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def alive(pid: int) -> bool:
    """Whether the process still runs."""
    return not is_zombie(pid)


async def wait_until_gone(text: str, *, seconds: float) -> list[int]:
    """Wait until no process mentions `text`; return those still running after `seconds`."""
    deadline = time.monotonic() + seconds
    left = pids_mentioning(text)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = pids_mentioning(text)
    return left


class Processes:
    """Starts `roomlog serve` processes and, on exit, kills everything it started or that uses its data dirs."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.serves: list[Serve] = []
        self.data_dirs: list[Path] = []

    def serve(
        self, *, env: dict[str, str], port: int | None = None, data_dir: Path | None = None,
        global_args: tuple[str, ...] = (),
    ) -> Serve:
        """Start `roomlog [--data-dir D] GLOBAL_ARGS serve --port PORT` (not waiting for it to be ready)."""
        port = port or free_port()
        args = [ROOMLOG]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
            if data_dir not in self.data_dirs:
                self.data_dirs.append(data_dir)
        args += [*global_args, "serve", "--port", str(port)]
        n = len(self.serves)
        stdout_path, stderr_path = self.log_dir / f"serve-{n}.out", self.log_dir / f"serve-{n}.err"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            # A session of its own: a Ctrl-C of pytest must not reach it behind our back.
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=err, start_new_session=True)
        serve = Serve(proc, port, stdout_path, stderr_path)
        self.serves.append(serve)
        return serve

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Kill every serve process still running, then any embedded server left in our data dirs."""
        for serve in self.serves:
            # The whole process group (each serve starts a session of its own): `--workers N` children too,
            # which would otherwise outlive a killed supervisor and keep the session's servers busy.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(serve.proc.pid, signal.SIGKILL)
            serve.proc.wait()
        for data_dir in self.data_dirs:
            _stop_embedded(data_dir)


def _stop_embedded(data_dir: Path) -> None:
    # SIGINT is PostgreSQL's fast shutdown (its backends follow the postmaster); nats-server exits on it too.
    pids = pids_mentioning(str(data_dir))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """A `Processes` whose leftovers are killed when the test ends."""
    with Processes(tmp_path) as procs:
        yield procs
