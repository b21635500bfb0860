"""Fault drills on the local cluster (deploy/local-cluster.py): loopback only, each bounded in time.

    python3 dev.py bench bench/chaos.py                 # `up` a 3-instance cluster, run every drill, `down`
    .venv/bin/python bench/chaos.py --seconds 5 --only nats-node instance-kill

Drills, each under send load (HTTP, retried with the same client_msg_id until acknowledged) and
WebSocket load (receivers that resume with their last seq per room on another instance when a socket
drops):

- nats-node:     SIGKILL one NATS node (the events stream's leader); restart it afterwards
- instance-kill: SIGKILL one roomlog instance; its clients resume elsewhere; restart it afterwards
- postgres:      restart the PostgreSQL primary (fast shutdown, start); requests get 503 meanwhile
- instance-stop: SIGSTOP one instance for --stop-seconds (10), then SIGCONT
- webhook-500:   a webhook receiver answers 500 for --webhook-fail-seconds (60), then 200

Each prints sent / acknowledged / delivered / lost / duplicated. lost counts acknowledged messages
missing from the log or from any receiver (or, for webhooks, deliveries that never got a 2xx);
duplicated counts a message twice in the log, an event delivered twice to one receiver, or a
delivery id answered 200 twice. Both must be 0; the exit status is 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import uvicorn
import websockets

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "local-cluster.py"
REQUEST_SECONDS = 2.0  # a request to a stopped instance gives up after this and goes to another
RETRY_SECONDS = 60.0  # an unacknowledged send is retried this long after the load stops
SETTLE_SECONDS = 60.0  # receivers must have every event this long after the load stops
CLUSTER_ENV = {
    # Short webhook backoff and enough attempts that a minute of 500s ends in delivery, not a dead letter.
    "ROOMLOG_WEBHOOK_BACKOFF": "0.5,1,2,3,5",
    "ROOMLOG_WEBHOOK_MAX_DELIVER": "100",
    "ROOMLOG_WEBHOOK_ALLOW_PRIVATE": "true",
    "ROOMLOG_DEFAULT_RATE_LIMIT": "0",
    "ROOMLOG_DEFAULT_SEND_RATE_LIMIT": "0",
    "ROOMLOG_ACCESS_LOG": "false",
}


async def poll(condition: Callable[[], bool], seconds: float, *, interval: float = 0.1) -> bool:
    """Whether `condition` became true within `seconds` (checked every `interval`): for states of other
    processes, which have no event to await."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(interval)
    return condition()


def local_cluster() -> ModuleType:
    """deploy/local-cluster.py as a module (its file name is not an identifier)."""
    spec = importlib.util.spec_from_file_location("local_cluster", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_cluster"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Tally:
    """One drill's outcome."""

    drill: str
    sent: int = 0
    acknowledged: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.acknowledged > 0 and self.delivered > 0


def table(tallies: list[Tally]) -> str:
    """The drills as a fixed-width table, with each drill's notes below it."""
    lines = [f"{'drill':<14} {'sent':>6} {'acked':>6} {'delivered':>9} {'lost':>5} {'dup':>4}"]
    for t in tallies:
        lines.append(f"{t.drill:<14} {t.sent:>6} {t.acknowledged:>6} {t.delivered:>9} {t.lost:>5} {t.duplicated:>4}")
        lines.extend(f"{'':<14} {k}: {v}" for k, v in t.notes.items())
    return "\n".join(lines)


class Cluster:
    """Signals and restarts for the parts of a cluster that `local-cluster.py up` started in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.lc = local_cluster()
        self.layout = self.lc.Layout(data_dir)
        self.plan = self.lc.Plan.load(self.layout.plan)

    @property
    def urls(self) -> list[str]:
        return [i.url for i in self.plan.instances]

    @property
    def nats_servers(self) -> list[str]:
        return [n.url for n in self.plan.nodes]

    def instance_pid(self, number: int) -> int:
        return int(self.lc.read_pid(self.layout.instance_pid(number)))

    def node_pid(self, name: str) -> int:
        return int(self.lc.read_pid(self.layout.node_pid(name)))

    def postmaster_pid(self) -> int:
        return int((self.layout.pgdata / "postmaster.pid").read_text().split()[0])

    async def start_again(self) -> None:
        """Start whatever part of the cluster is down (`local-cluster.py start`) and wait until it is ready."""
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ROOMLOG_")}, **CLUSTER_ENV}
        done = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), "start", "--data-dir", str(self.layout.root), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(done.communicate(), 180)
        if done.returncode != 0:
            raise RuntimeError(f"local-cluster.py start failed:\n{out.decode()}")

    async def restart_postgres(self) -> float:
        """Fast-shut the postmaster down and start it again; seconds it was down."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGINT)
        started = time.monotonic()
        if not await poll(lambda: not self.lc.alive(pid), 30, interval=0.05):
            raise RuntimeError("postmaster did not stop")
        await self.start_again()
        return time.monotonic() - started

    async def events_leader(self) -> str:
        """The NATS node that leads the events stream."""
        import nats

        from service.realtime.jetstream import EVENTS_STREAM

        nc = await nats.connect(self.nats_servers, connect_timeout=2)
        try:
            info = await nc.jetstream(timeout=5).stream_info(EVENTS_STREAM)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader is not None
        return str(info.cluster.leader)


def create_tenant(database_url: str, name: str) -> tuple[str, str]:
    """A tenant made with `roomlog tenant create`: (tenant_id, api_key)."""
    roomlog = str(Path(sys.executable).parent / "roomlog")
    env = {**os.environ, "DATABASE_URL": database_url}
    created = subprocess.run([roomlog, "tenant", "create", name], capture_output=True, text=True, env=env,
                             timeout=60, check=True)
    printed = dict(line.split(":", 1) for line in created.stdout.splitlines()[:2])
    return printed["tenant_id"].strip(), printed["api_key"].strip()


class Load:
    """Senders posting messages through every instance and WebSocket receivers following every room."""

    def __init__(self, urls: list[str], api_key: str, *, rooms: int = 4, senders: int = 4, receivers: int = 3,
                 members: tuple[str, ...] = ("bob",), pause: float = 0.02) -> None:
        self.urls = urls
        self.api_key = api_key
        self.members = members
        self.room_count, self.sender_count, self.receiver_count, self.pause = rooms, senders, receivers, pause
        self.run = uuid.uuid4().hex[:8]
        self.rooms: list[str] = []
        self.sent: set[str] = set()
        self.acked: dict[str, tuple[str, int]] = {}
        self.failures: Counter[str] = Counter()
        self.slowest_503 = 0.0
        self.received: list[dict[str, Counter[int]]] = []
        self.resumes = 0
        self._sending = True
        self._receiving = True
        self._tasks: list[asyncio.Task[None]] = []
        self.http = httpx.AsyncClient(timeout=REQUEST_SECONDS)

    def headers(self, user: str) -> dict[str, str]:
        return {"X-API-Key": self.api_key, "X-User-Id": user}

    async def start(self) -> None:
        """Create the rooms, connect the receivers, start sending."""
        for _ in range(self.room_count):
            r = await self.http.post(f"{self.urls[0]}/rooms", headers=self.headers("ann"),
                                     json={"type": "group", "members": list(self.members)})
            r.raise_for_status()
            self.rooms.append(r.json()["room_id"])
        for j in range(self.receiver_count):
            self.received.append({room: Counter() for room in self.rooms})
            self._tasks.append(asyncio.create_task(self._receive(j)))
        for k in range(self.sender_count):
            self._tasks.append(asyncio.create_task(self._send(k)))

    async def stop(self) -> None:
        """Stop sending (what is in flight is retried until acknowledged), wait for the receivers, close."""
        self._sending = False
        senders = self._tasks[self.receiver_count:]
        await asyncio.gather(*senders)
        last = await self.last_seqs()
        await poll(lambda: all(max(got[room], default=0) >= last[room] for got in self.received for room in self.rooms),
                   SETTLE_SECONDS)
        self._receiving = False
        for task in self._tasks[:self.receiver_count]:
            task.cancel()
        await asyncio.gather(*self._tasks[:self.receiver_count], return_exceptions=True)

    async def _send(self, k: int) -> None:
        i = 0
        while self._sending:
            i += 1
            cid = f"{self.run}-{k}-{i}"
            room = self.rooms[(k + i) % len(self.rooms)]
            self.sent.add(cid)
            await self._post_until_acked(k + i, room, cid)
            await asyncio.sleep(self.pause)

    async def _post_until_acked(self, turn: int, room: str, cid: str) -> None:
        give_up = None
        attempt = 0
        while give_up is None or time.monotonic() < give_up:
            url = self.urls[(turn + attempt) % len(self.urls)]
            attempt += 1
            started = time.monotonic()
            try:
                r = await self.http.post(f"{url}/rooms/{room}/messages", headers=self.headers("ann"),
                                         json={"content": cid, "client_msg_id": cid})
            except httpx.HTTPError as exc:
                self.failures[type(exc).__name__] += 1
            else:
                if r.status_code == 201:
                    self.acked[cid] = (room, r.json()["seq"])
                    return
                code = r.json().get("error", {}).get("code", "") if r.headers.get("content-type") else ""
                self.failures[f"{r.status_code} {code}".strip()] += 1
                if r.status_code == 503:
                    self.slowest_503 = max(self.slowest_503, time.monotonic() - started)
                elif r.status_code < 500:
                    raise AssertionError(f"send answered {r.status_code}: {r.text}")
            if give_up is None and not self._sending:
                give_up = time.monotonic() + RETRY_SECONDS
            await asyncio.sleep(0.05)

    async def _receive(self, j: int) -> None:
        got = self.received[j]
        attempt = j
        while self._receiving:
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            try:
                r = await self.http.post(f"{url}/tokens", headers=self.headers("bob"))
                r.raise_for_status()
                ws_url = url.replace("http://", "ws://") + r.json()["ws_url"]
                async with websockets.connect(ws_url, ping_interval=1, ping_timeout=2, open_timeout=3,
                                              close_timeout=1) as ws:
                    await ws.send(json.dumps({"type": "sync", "rooms": {
                        room: max(got[room], default=0) for room in self.rooms}}))
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame.get("room_id") in got and "seq" in frame and "actor" in frame:
                            got[frame["room_id"]][frame["seq"]] += 1
            except (OSError, TimeoutError, httpx.HTTPError, websockets.WebSocketException):
                pass
            if self._receiving:
                self.resumes += 1
                await asyncio.sleep(0.1)

    async def log(self) -> dict[str, list[dict[str, Any]]]:
        """Every room's events as the log has them (read from any instance that answers)."""
        result: dict[str, list[dict[str, Any]]] = {}
        for room in self.rooms:
            events: list[dict[str, Any]] = []
            while True:
                page = await self._get_any(f"/rooms/{room}/events?limit=1000&after_seq={len(events)}")
                events.extend(page)
                if len(page) < 1000:
                    break
            result[room] = events
        return result

    async def last_seqs(self) -> dict[str, int]:
        return {room: (events[-1]["seq"] if events else 0) for room, events in (await self.log()).items()}

    async def _get_any(self, path: str) -> Any:
        for _ in range(40):
            for url in self.urls:
                with contextlib.suppress(httpx.HTTPError):
                    r = await self.http.get(f"{url}{path}", headers=self.headers("bob"))
                    if r.status_code == 200:
                        return r.json()
            await asyncio.sleep(0.25)
        raise RuntimeError(f"no instance answered {path}")

    async def tally(self, drill: str) -> Tally:
        """Compare what was acknowledged with the log and with what every receiver got."""
        log = await self.log()
        in_log = Counter(e["data"]["client_msg_id"] for events in log.values() for e in events
                         if e["type"] == "message.sent" and (e["data"].get("client_msg_id") or "").startswith(self.run))
        seq_of = {room: {e["seq"] for e in events} for room, events in log.items()}
        missing_in_log = [cid for cid in self.acked if in_log[cid] == 0]
        undelivered = [cid for cid, (room, seq) in self.acked.items()
                       if any(got[room][seq] == 0 for got in self.received)]
        doubled_deliveries = sum(n - 1 for got in self.received for c in got.values() for n in c.values() if n > 1)
        unknown = sum(1 for got in self.received for room, c in got.items() for s in c if s not in seq_of[room])
        await self.http.aclose()
        return Tally(
            drill, sent=len(self.sent), acknowledged=len(self.acked),
            delivered=len(self.acked) - len(undelivered),
            lost=len(set(missing_in_log) | set(undelivered)),
            duplicated=sum(n - 1 for n in in_log.values() if n > 1) + doubled_deliveries + unknown,
            notes={"failed attempts (retried)": dict(self.failures) or "none", "websocket resumes": self.resumes,
                   **({"slowest 503 (s)": round(self.slowest_503, 3)} if self.slowest_503 else {}),
                   **({"events received that the log lacks": unknown} if unknown else {})},
        )


async def under_load(drill: str, urls: list[str], api_key: str, seconds: float,
                     fault: Callable[[Load], Awaitable[dict[str, Any]]]) -> Tally:
    """Start the load, let it run a moment, apply the fault, run out `seconds`, stop and tally."""
    load = Load(urls, api_key)
    await load.start()
    started = time.monotonic()
    await asyncio.sleep(min(1.0, seconds / 4))
    notes = await fault(load)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    await load.stop()
    tally = await load.tally(drill)
    tally.notes.update(notes)
    return tally


async def drill_nats_node(cluster: Cluster, api_key: str, *, seconds: float) -> Tally:
    """SIGKILL the node leading the events stream under load; R3 keeps going. The node is restarted after."""
    leader = await cluster.events_leader()

    async def fault(load: Load) -> dict[str, Any]:
        os.kill(cluster.node_pid(leader), signal.SIGKILL)
        return {"killed": leader}

    tally = await under_load("nats-node", cluster.urls, api_key, seconds, fault)
    await cluster.start_again()
    return tally


async def drill_instance_kill(cluster: Cluster, api_key: str, *, seconds: float) -> Tally:
    """SIGKILL one instance under load; its WebSocket clients resume on another. It is restarted after."""
    victim = cluster.plan.instances[-1].number

    async def fault(load: Load) -> dict[str, Any]:
        os.kill(cluster.instance_pid(victim), signal.SIGKILL)
        return {"killed": f"instance {victim}"}

    tally = await under_load("instance-kill", cluster.urls, api_key, seconds, fault)
    await cluster.start_again()
    return tally


async def drill_postgres(cluster: Cluster, api_key: str, *, seconds: float) -> Tally:
    """Restart the PostgreSQL primary under load: 503s meanwhile, then the service recovers by itself."""
    async def fault(load: Load) -> dict[str, Any]:
        down = await cluster.restart_postgres()
        return {"postgres down (s)": round(down, 2)}

    return await under_load("postgres", cluster.urls, api_key, seconds, fault)


async def drill_instance_stop(cluster: Cluster, api_key: str, *, seconds: float, stop_seconds: float) -> Tally:
    """SIGSTOP one instance for `stop_seconds`, then SIGCONT: its requests and sockets move elsewhere."""
    victim = cluster.plan.instances[0].number

    async def fault(load: Load) -> dict[str, Any]:
        pid = cluster.instance_pid(victim)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(stop_seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        return {"stopped": f"instance {victim} for {stop_seconds:g} s"}

    return await under_load("instance-stop", cluster.urls, api_key, max(seconds, stop_seconds + 1), fault)


class FlakyReceiver:
    """An ASGI webhook receiver answering 500 until `healthy_at`, then 200; counts 200s per delivery id."""

    def __init__(self, healthy_at: float) -> None:
        self.healthy_at = healthy_at
        self.accepted: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        delivery = dict(scope["headers"]).get(b"x-roomlog-delivery", b"").decode()
        status = 500 if time.monotonic() < self.healthy_at else 200
        if status == 200:
            self.accepted[delivery] += 1
            self.bodies[delivery] = json.loads(body)
        else:
            self.refused += 1
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def drill_webhook(cluster: Cluster, api_key: str, *, seconds: float, fail_seconds: float) -> Tally:
    """A webhook receiver answers 500 for `fail_seconds`, then 200: every delivery arrives once, by its id."""
    receiver = FlakyReceiver(time.monotonic() + 1e9)
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    if not await poll(lambda: server.started, 10, interval=0.02):
        raise RuntimeError("webhook receiver did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient(timeout=5) as http:
        # `tenant create` makes the user "admin" a tenant admin, who may register webhooks.
        r = await http.post(f"{cluster.urls[0]}/webhooks", headers={"X-API-Key": api_key, "X-User-Id": "admin"},
                            json={"url": f"http://127.0.0.1:{port}/hook", "events": ["message.offline"]})
        r.raise_for_status()
    receiver.healthy_at = time.monotonic() + fail_seconds
    # carol is a member who never connects: every message is one message.offline delivery for her.
    load = Load(cluster.urls, api_key, members=("bob", "carol"), senders=2)
    await load.start()
    await asyncio.sleep(seconds)
    await load.stop()
    log = await load.log()
    expected = {(room, e["seq"]) for room, events in log.items() for e in events if e["type"] == "message.sent"}

    def carol_got() -> set[tuple[str, int]]:
        return {(b["room_id"], b["message"]["seq"]) for b in receiver.bodies.values() if b["user_id"] == "carol"}

    await poll(lambda: expected <= carol_got(), SETTLE_SECONDS + fail_seconds, interval=0.2)
    await asyncio.sleep(1.0)  # a redelivery of something already accepted would arrive now
    tally = await load.tally("webhook-500")
    server.should_exit = True
    await serving
    got = carol_got()
    tally.notes = {"deliveries expected (carol)": len(expected), "answered 500": receiver.refused,
                   "failing for (s)": fail_seconds, **tally.notes}
    tally.delivered = len(expected & got)
    tally.lost += len(expected - got)
    tally.duplicated += sum(n - 1 for n in receiver.accepted.values() if n > 1)
    return tally


DRILLS = ("nats-node", "instance-kill", "postgres", "instance-stop", "webhook-500")


async def run_drills(cluster: Cluster, *, seconds: float, stop_seconds: float, webhook_fail_seconds: float,
                     only: tuple[str, ...] = DRILLS) -> list[Tally]:
    """Run the chosen drills one after another on a running cluster, each on a tenant of its own."""
    tallies = []
    for name in only:
        _, api_key = create_tenant(cluster.plan.database_url, f"chaos-{name}")
        if name == "nats-node":
            tallies.append(await drill_nats_node(cluster, api_key, seconds=seconds))
        elif name == "instance-kill":
            tallies.append(await drill_instance_kill(cluster, api_key, seconds=seconds))
        elif name == "postgres":
            tallies.append(await drill_postgres(cluster, api_key, seconds=seconds))
        elif name == "instance-stop":
            tallies.append(await drill_instance_stop(cluster, api_key, seconds=seconds, stop_seconds=stop_seconds))
        elif name == "webhook-500":
            tallies.append(await drill_webhook(cluster, api_key, seconds=seconds, fail_seconds=webhook_fail_seconds))
        print(table(tallies[-1:]), flush=True)
    return tallies


def up(data_dir: Path, *, instances: int, base_port: int, nats_base_port: int) -> None:
    """Start the local cluster with the drills' settings (short webhook backoff, private webhooks allowed)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ROOMLOG_")}, **CLUSTER_ENV}
    env.pop("DATABASE_URL", None)
    env.pop("NATS_URL", None)
    subprocess.run([sys.executable, str(SCRIPT), "up", "--instances", str(instances), "--data-dir", str(data_dir),
                    "--base-port", str(base_port), "--nats-base-port", str(nats_base_port)],
                   env=env, check=True, timeout=180)


def down(data_dir: Path) -> None:
    """Stop the local cluster."""
    subprocess.run([sys.executable, str(SCRIPT), "down", "--data-dir", str(data_dir)], timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="load per drill (default 15)")
    parser.add_argument("--stop-seconds", type=float, default=10.0, help="SIGSTOP length (default 10)")
    parser.add_argument("--webhook-fail-seconds", type=float, default=60.0, help="receiver's 500s (default 60)")
    parser.add_argument("--only", nargs="+", choices=DRILLS, default=list(DRILLS))
    parser.add_argument("--base-port", type=int, default=18080)
    parser.add_argument("--nats-base-port", type=int, default=14222)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="roomlog-chaos-")) / "cluster"
    up(data_dir, instances=3, base_port=args.base_port, nats_base_port=args.nats_base_port)
    try:
        tallies = asyncio.run(run_drills(Cluster(data_dir), seconds=args.seconds, stop_seconds=args.stop_seconds,
                                         webhook_fail_seconds=args.webhook_fail_seconds, only=tuple(args.only)))
    finally:
        down(data_dir)
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    print("\n" + table(tallies))
    return 0 if all(t.ok for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
