"""Send throughput and latency of `POST /rooms/{room_id}/messages` through the full HTTP path.

Starts `roomlog serve` on the embedded default in a fresh data directory, creates a tenant and rooms
through the public API, drives the send endpoint with a closed-loop load generator running in its own
process (bench/_loadgen.py), prints sends/s and latency percentiles, then checks on the server side
that every 201 left exactly one message.sent event in its room's log. See bench/README.md.

    .venv/bin/python bench/send.py [--workers N] [--duration 15] [--warmup 3] [--connections 32] [--rooms 100]
                                   [--metrics on|off] [--attachments] [--pg-statements N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_SENDS_PER_SECOND = 3000
TARGET_P99_MS = 50.0
# Sends/s through HTTP against the raw one-transaction-per-append ceiling (bench/raw_append.py), with p99 <= 25 ms.
TARGET_RATIO = 1.2
TARGET_RATIO_P99_MS = 25.0
_TICK = os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when the server-side check fails."""
    return with_server(_parser().parse_args(argv), run, prefix="roomlog-bench-")


def with_server(args: argparse.Namespace, run: Callable[[argparse.Namespace, Server], int], *, prefix: str) -> int:
    """Start `roomlog serve` as the flags say, call `run(args, server)`, then stop it and clean up."""
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix=prefix))
    keep = args.keep_data_dir or args.data_dir is not None
    server = Server(_roomlog_command(args.roomlog), data_dir, port=args.port or _free_port(),
                    workers=args.workers,
                    extra_env={"ROOMLOG_METRICS": getattr(args, "metrics", "on"), **_parse_env(args.server_env)})
    try:
        server.start()
        return run(args, server)
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"data directory kept: {data_dir}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--attachments", action="store_true",
                   help="every send is an image message with one confirmed attachment of its sender")
    p.add_argument("--mentions", action="store_true",
                   help="every send mentions another member of its room (a quarter of the rooms: and @room)")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    p.add_argument("--rooms", type=int, default=100, help="rooms to spread the sends over (default 100)")
    p.add_argument("--members", type=int, default=4, help="members per room, each a sender (default 4)")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before (default 3)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server, e.g. ROOMLOG_ACCESS_LOG=false (repeatable)")
    p.add_argument("--profile", metavar="PATH",
                   help="record the server with py-spy during the measured window: .svg flame graph, "
                        ".json speedscope, anything else collapsed stacks (summarised on stdout)")
    p.add_argument("--pg-statements", type=int, default=0, metavar="N",
                   help="restart the embedded PostgreSQL with pg_stat_statements (nested statements tracked) before "
                        "the set-up and print the N statements with the most execution time in the measured window")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    p.add_argument("--raw-seconds", type=float, default=5.0,
                   help="seconds of bench/raw_append.py before and after the load (0: skip; default 5)")
    p.add_argument("--raw-statement", choices=["plain", "rl_append"], default="plain",
                   help="raw_append.py's statement: the textbook append, or the service's rl_append (default plain)")
    p.add_argument("--auth", choices=["api-key", "jwt"], default="api-key",
                   help="send with the tenant key + X-User-Id (default), or as end users with access JWTs")
    p.add_argument("--metrics", choices=["on", "off"], default="on",
                   help="the server's Prometheus metrics (ROOMLOG_METRICS; default on, as shipped): compare both")
    p.add_argument("--rate-limits", choices=["off", "on"], default="off",
                   help="on: the tenant gets limits high enough never to refuse, so every send is counted")
    return p


def run(args: argparse.Namespace, server: Server) -> int:
    """Set up tenant and rooms, run the load, check the log, print the report."""
    if args.pg_statements:
        enable_statement_stats(server)
    load_before = os.getloadavg()
    limits = HIGH_LIMITS if args.rate_limits == "on" else NO_LIMITS
    api_key = server.create_tenant("bench", limits)
    api = Api("127.0.0.1", server.port, api_key)
    rooms = create_rooms(api, args.rooms, args.members)
    run_id = secrets.token_hex(4)
    config = {
        "host": "127.0.0.1", "port": server.port, "api_key": api_key, "rooms": rooms,
        "connections": args.connections, "warmup": args.warmup, "duration": args.duration, "run_id": run_id,
    }
    if args.auth == "jwt":
        config["tokens"] = log_in_everyone(server.port, api_key, sorted({u for r in rooms for u in r["members"]}))
    if args.attachments:
        config["attachments"] = upload_images(api, sorted({u for r in rooms for u in r["members"]}))
    if args.mentions:
        config["mentions"] = True
    print(f"auth {args.auth}, rate limits {args.rate_limits}, metrics {args.metrics}, "
          f"attachments {'one image per send' if args.attachments else 'none'}, "
          f"mentions {'in every send' if args.mentions else 'none'}", file=sys.stderr)
    print(f"load {args.connections} connections over {args.rooms} rooms x {args.members} members, "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured, server workers={args.workers} "
          f"(loadavg before {load_before[0]:.2f})", file=sys.stderr)
    raw_before = raw_ceiling(server, args)
    statements: list[dict[str, Any]] = []
    result, cpu = drive(
        config, server, profile=args.profile, duration=args.duration,
        on_window=(lambda: statement_stats(server, 0)) if args.pg_statements else None,
        on_window_end=(lambda: statements.extend(statement_stats(server, args.pg_statements)))
        if args.pg_statements else None,
    )
    if args.pg_statements:
        print_statement_stats(statements, result["measured_ok"])
    search_lag = search_catch_up_seconds(server)
    uncertain = result["unfinished"] + result["timeouts"] + result["connection_errors"]
    check = verify(api, rooms, result["ok_per_room"], uncertain=uncertain)
    raw_after = raw_ceiling(server, args)
    summary = summarise(args, result, cpu, check, load_before)
    summary["raw_appends_per_second"] = [raw_before, raw_after]
    if raw_before and raw_after:
        summary["ratio_to_raw"] = round(result["sends_per_second"] / ((raw_before + raw_after) / 2), 3)
        summary["ratio_target_met"] = (summary["ratio_to_raw"] >= TARGET_RATIO and check.ok
                                       and result["latency_ms"].get("p99", math.inf) <= TARGET_RATIO_P99_MS)
    summary["appends_per_transaction"] = group_commit_stats(server)
    summary["search_caught_up_after_s"] = search_lag
    report(summary, result, cpu, check)
    if args.profile and not args.profile.endswith((".svg", ".json")):
        from _profile import summarise_collapsed  # bench/ is on sys.path when run as a script

        summarise_collapsed(Path(args.profile), root=_project_root())
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if check.ok else 1


# --- the server -------------------------------------------------------------------------------------


class Server:
    """`roomlog serve` on the embedded default in `data_dir`, its output in data_dir/server.log."""

    def __init__(self, command: list[str], data_dir: Path, *, port: int, workers: int,
                 extra_env: dict[str, str]) -> None:
        self.command = command
        self.data_dir = data_dir
        self.port = port
        self.workers = workers
        self.env = _server_env(extra_env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until /health answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.command, "--data-dir", str(self.data_dir), "serve", "--port", str(self.port),
                 "--workers", str(self.workers)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"roomlog serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            if time.monotonic() > deadline:
                raise SystemExit(f"roomlog serve not healthy after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def create_tenant(self, name: str, limits: tuple[int, int]) -> str:
        """Create a tenant with `roomlog tenant create` and these (requests/s, sends/s) limits; its API key."""
        base = [*self.command, "--data-dir", str(self.data_dir), "tenant", "create"]
        usage = subprocess.run([*base, "--help"], capture_output=True, text=True, env=self.env).stdout
        flags = (["--rate-limit", str(limits[0]), "--send-rate-limit", str(limits[1])]
                 if "--send-rate-limit" in usage else [])
        done = subprocess.run([*base, name, *flags], capture_output=True, text=True, env=self.env)
        found = re.search(r"^api_key:\s*(\S+)", done.stdout, re.MULTILINE)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"tenant create failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return found.group(1)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGINT (what Ctrl-C sends), then SIGTERM and SIGKILL if it does not exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                print(f"roomlog serve still running after {sig.name}", file=sys.stderr)
        if self.proc.returncode not in (0, -signal.SIGINT):
            print(f"roomlog serve exited with {self.proc.returncode}; log tail:\n{self.log_tail()}", file=sys.stderr)

    def log_tail(self, lines: int = 30) -> str:
        path = self.data_dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(self._postmaster_lines()[0])
        return None

    def database_url(self) -> str | None:
        """The embedded PostgreSQL's URI (unix socket), from its postmaster.pid."""
        with contextlib.suppress(OSError, IndexError):
            lines = self._postmaster_lines()
            return f"postgresql://postgres@/postgres?host={lines[4]}&port={lines[3]}"
        return None

    def _postmaster_lines(self) -> list[str]:
        return (self.data_dir / "postgres" / "postmaster.pid").read_text().splitlines()


def _server_env(extra: dict[str, str]) -> dict[str, str]:
    # The embedded default: no external URLs, no inherited ROOMLOG_* settings; per-tenant and per-user
    # rate limits off (the point is the ceiling of the send path, not the limiter's refusals).
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "NATS_URL") and not k.startswith("ROOMLOG_")}
    env.update({"ROOMLOG_DEFAULT_RATE_LIMIT": "0", "ROOMLOG_DEFAULT_SEND_RATE_LIMIT": "0"})
    env.update(extra)
    return env


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--server-env wants NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def _roomlog_command(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    beside = Path(sys.executable).parent / "roomlog"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "from service.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _project_root() -> Path:
    return HERE.parent


# --- the public API, for setup and the check ---------------------------------------------------------


class Api:
    """A tiny keep-alive JSON client for the few setup and check requests."""

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, user: str, body: object = None) -> tuple[int, Any]:
        headers = {"X-API-Key": self.api_key, "X-User-Id": user}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            return response.status, json.loads(raw) if raw else None
        raise AssertionError("unreachable")


NO_LIMITS = (0, 0)  # 0 = unlimited: the limiter is skipped entirely
# On, but never refusing at these rates: every request and every send still goes through the limiter.
HIGH_LIMITS = (1_000_000, 100_000)


def log_in_everyone(port: int, api_key: str, users: list[str], *, parallel: int = 8) -> dict[str, str]:
    """Register every sender with a password (as the tenant admin) and log each in; user -> access JWT."""
    password = secrets.token_urlsafe(12)

    def one(user: str) -> tuple[str, str]:
        api = Api("127.0.0.1", port, api_key)
        email = f"{user}@bench.invalid"
        status, body = api.call("POST", "/users", "admin",
                                {"user_id": user, "email": email, "display_name": user, "password": password})
        if status not in (201, 409):
            raise SystemExit(f"POST /users answered {status}: {body}")
        status, body = api.call("POST", "/auth/login", user, {"email": email, "password": password})
        if status != 200:
            raise SystemExit(f"POST /auth/login answered {status}: {body}")
        return user, body["access_token"]

    # Password hashing is deliberately slow (argon2); a few at a time keeps set-up short.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(parallel) as pool:
        return dict(pool.map(one, users))


# A 1x1 PNG: every sender's attachment (its metadata rides in each message; the bytes stay in the store).
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c6338c1c5050002"
    "7a00dd6727427d0000000049454e44ae426082"
)


def upload_images(api: Api, users: list[str], *, seconds: float = 60.0) -> dict[str, str]:
    """One confirmed image upload per user (through the presigned PUT); user -> media id.

    The embedded object store starts beside the service without holding it up: wait until it answers.
    """
    import urllib.request

    found: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    for user in users:
        while True:
            status, ticket = api.call("POST", "/media/upload-url", user,
                                      {"filename": "b.png", "content_type": "image/png", "size": len(TINY_PNG)})
            if status == 201:
                break
            if status != 503 or time.monotonic() > deadline:
                raise SystemExit(f"POST /media/upload-url answered {status}: {ticket}")
            time.sleep(0.5)
        put = urllib.request.Request(ticket["upload_url"], data=TINY_PNG, method="PUT", headers=ticket["headers"])
        with urllib.request.urlopen(put, timeout=10) as answer:
            assert answer.status == 200
        status, media = api.call("POST", f"/media/{ticket['media_id']}/confirm", user, {})
        if status != 200:
            raise SystemExit(f"POST /media/{{id}}/confirm answered {status}: {media}")
        found[user] = ticket["media_id"]
    return found


def create_rooms(api: Api, count: int, members: int) -> list[dict[str, Any]]:
    """`count` group rooms, each with `members` users (the first creates it); all of them may send."""
    rooms = []
    for r in range(count):
        users = [f"bench-u{r}-{m}" for m in range(members)]
        status, body = api.call("POST", "/rooms", users[0],
                                {"type": "group", "members": users[1:], "name": f"bench room {r}"})
        if status != 201:
            raise SystemExit(f"POST /rooms answered {status}: {body}")
        rooms.append({"room_id": body["room_id"], "members": users})
    return rooms


@dataclass
class Check:
    """What the room logs hold compared with what the generator was told."""

    sent_events: int = 0
    ok_responses: int = 0
    rooms_with_count_mismatch: list[str] = field(default_factory=list)
    rooms_with_seq_gaps: list[str] = field(default_factory=list)
    duplicate_client_msg_ids: int = 0
    # Requests without an answer (timed out, connection lost, still in flight when the drain gave up)
    # may or may not have committed: each may explain one event more than there were 201s.
    uncertain: int = 0

    @property
    def ok(self) -> bool:
        if self.rooms_with_seq_gaps or self.duplicate_client_msg_ids:
            return False
        if not self.rooms_with_count_mismatch:
            return True
        return 0 <= self.sent_events - self.ok_responses <= self.uncertain


def verify(api: Api, rooms: list[dict[str, Any]], ok_per_room: dict[str, int], *, uncertain: int) -> Check:
    """Read every room's log through GET /rooms/{id}/events and compare with the 201s."""
    check = Check(ok_responses=sum(ok_per_room.values()), uncertain=uncertain)
    for room in rooms:
        room_id, reader = room["room_id"], room["members"][0]
        seqs: list[int] = []
        ids: set[str] = set()
        sent = 0
        while True:
            after = seqs[-1] if seqs else 0
            status, events = api.call("GET", f"/rooms/{room_id}/events?after_seq={after}&limit=1000", reader)
            if status != 200:
                raise SystemExit(f"GET /rooms/{room_id}/events answered {status}: {events}")
            for e in events:
                seqs.append(e["seq"])
                if e["type"] == "message.sent":
                    sent += 1
                    ids.add(str((e.get("data") or {}).get("client_msg_id")))
            if len(events) < 1000:
                break
        check.sent_events += sent
        check.duplicate_client_msg_ids += sent - len(ids)
        if sent != ok_per_room.get(room_id, 0):
            check.rooms_with_count_mismatch.append(room_id)
        if seqs != list(range(1, len(seqs) + 1)):
            check.rooms_with_seq_gaps.append(room_id)
    return check


def search_catch_up_seconds(server: Server, *, give_up: float = 30.0) -> float | None:
    """Seconds from the end of the load until the search index (a catch-up projection) applied the whole log.

    A diagnostic like group_commit_stats: it reads the checkpoint from the database; None if unavailable.
    """
    url = server.database_url()
    if url is None:
        return None
    import asyncpg

    async def wait() -> float | None:
        started = time.monotonic()
        conn = await asyncpg.connect(url)
        try:
            target = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
            while time.monotonic() - started < give_up:
                done = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = 'search'")
                if done is not None and done >= target:
                    return time.monotonic() - started
                await asyncio.sleep(0.005)
            return None
        finally:
            await conn.close()

    try:
        return asyncio.run(wait())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"search catch-up unavailable: {exc}", file=sys.stderr)
        return None


def group_commit_stats(server: Server) -> dict[str, float]:
    """How many sends shared a transaction (group commit), read from events.tx_id; {} if unavailable.

    A diagnostic, not part of the check: it reads the database directly rather than the public API.
    """
    url = server.database_url()
    try:
        import asyncpg
    except ImportError:
        return {}

    async def query() -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT count(*) AS n FROM events WHERE type = 'message.sent' GROUP BY tx_id ORDER BY n"
            )
        finally:
            await conn.close()
        return [row["n"] for row in rows]

    if url is None:
        return {}
    try:
        sizes = asyncio.run(query())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"group-commit stats unavailable: {exc}", file=sys.stderr)
        return {}
    if not sizes:
        return {}
    return {"transactions": len(sizes), "mean": round(sum(sizes) / len(sizes), 2),
            "p50": sizes[len(sizes) // 2], "p99": sizes[min(len(sizes) - 1, len(sizes) * 99 // 100)],
            "max": sizes[-1]}


def enable_statement_stats(server: Server) -> None:
    """Load pg_stat_statements into the embedded PostgreSQL (a restart of the server and its PostgreSQL)."""
    import asyncpg

    async def configure() -> None:
        conn = await asyncpg.connect(server.database_url())
        try:
            await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            await conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
            await conn.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        finally:
            await conn.close()

    asyncio.run(configure())
    server.stop()
    server.start()


def statement_stats(server: Server, limit: int) -> list[dict[str, Any]]:
    """The `limit` statements with the most execution time since the last call (which resets the counters)."""
    import asyncpg

    async def query() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(server.database_url())
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            rows = await conn.fetch(
                "SELECT calls, total_exec_time + total_plan_time AS ms, total_plan_time AS plan_ms, plans, rows,"
                " toplevel,"
                " regexp_replace(query, '\\s+', ' ', 'g') AS query FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY total_exec_time + total_plan_time DESC LIMIT $1", limit)
            await conn.execute("SELECT pg_stat_statements_reset()")
        finally:
            await conn.close()
        return [dict(r) for r in rows]

    return asyncio.run(query())


def print_statement_stats(rows: list[dict[str, Any]], measured_ok: int) -> None:
    sends = max(1, measured_ok)
    print(f"pg statements in the window (per 201: {sends:,}); nested ones are inside rl_append's time")
    for r in rows:
        level = "top" if r["toplevel"] else "nested"
        planned = f"(planning {r['plan_ms'] * 1000 / sends:.1f}, {r['plans']:,} plans)" if r["plans"] else ""
        print(f"  {r['ms'] * 1000 / sends:7.1f} us/send  {r['calls']:>8,} calls  {level:6}  {planned}"
              f"  {r['query'][:130]}")


# --- driving the load, and CPU accounting -------------------------------------------------------------


def raw_ceiling(server: Server, args: argparse.Namespace) -> float | None:
    """Appends/s of bench/raw_append.py (asyncpg, one transaction per append) on the server's PostgreSQL."""
    url = server.database_url()
    if not args.raw_seconds or url is None:
        return None
    done = subprocess.run([sys.executable, str(HERE / "raw_append.py"), url, "--writers", str(args.connections),
                           "--rooms", str(args.rooms), "--seconds", str(args.raw_seconds),
                           "--statement", args.raw_statement],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"raw_append.py failed: {done.stderr[-2000:]}", file=sys.stderr)
        return None
    return round(float(json.loads(done.stdout.strip().splitlines()[-1])["appends_per_second"]), 1)


def drive(config: dict[str, Any], server: Server, *, profile: str | None, duration: float,
          on_window: Callable[[], object] | None = None,
          on_window_end: Callable[[], object] | None = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the generator process; sample CPU of every party at the edges of the measured window."""
    gen = subprocess.Popen([sys.executable, str(HERE / "_loadgen.py")], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert gen.stdin is not None and gen.stdout is not None
    gen.stdin.write(json.dumps(config))
    gen.stdin.close()
    start: dict[str, float] = {}
    cpu: dict[str, float] = {}
    spy: subprocess.Popen[bytes] | None = None
    window_started = 0.0
    result: dict[str, Any] | None = None
    for line in gen.stdout:
        line = line.strip()
        if line == "warmup-done":
            if on_window is not None:
                on_window()
            start = cpu_sample(server, gen.pid)
            window_started = time.monotonic()
            if profile:
                spy = start_profiler(server, profile, duration)
        elif line == "measure-done":
            end = cpu_sample(server, gen.pid)
            if on_window_end is not None:
                on_window_end()
            wall = time.monotonic() - window_started
            cpu = {name: (end[name] - start.get(name, 0.0)) / wall for name in end}
            cpu["wall_seconds"] = wall
        elif line.startswith("{"):
            result = json.loads(line)
    if gen.wait() != 0 or result is None:
        raise SystemExit(f"load generator failed ({gen.returncode})")
    if result["internal_errors"] or not result["total_by_status"]:
        raise SystemExit(f"load generator broke ({result['internal_errors']} errors in its callbacks, "
                         f"{sum(result['total_by_status'].values())} responses): see its traceback above")
    if spy is not None:
        spy.wait()
    return result, cpu


def start_profiler(server: Server, path: str, duration: float) -> subprocess.Popen[bytes] | None:
    """py-spy record on the server (and its workers) for the measured window."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("--profile: py-spy not found (pip install py-spy into this venv)", file=sys.stderr)
        return None
    assert server.proc is not None
    fmt = "flamegraph" if path.endswith(".svg") else "speedscope" if path.endswith(".json") else "raw"
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--duration",
         str(max(1, math.floor(duration))), "--rate", "200", "--format", fmt, "--output", path, "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def cpu_sample(server: Server, generator_pid: int) -> dict[str, float]:
    """CPU seconds so far of the roomlog processes, nats-server, PostgreSQL, the generator, the machine."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out = {"roomlog": 0.0, "nats": 0.0, "postgres": 0.0, "generator": 0.0}
    assert server.proc is not None
    for pid in _tree(server.proc.pid, children):
        name, _, ticks = procs.get(pid, ("", 0, 0))
        out["nats" if name == "nats-server" else "roomlog"] += ticks / _TICK
    postmaster = server.postmaster_pid()
    if postmaster is not None:
        out["postgres"] = sum(procs[p][2] for p in _tree(postmaster, children) if p in procs) / _TICK
    out["generator"] = procs.get(generator_pid, ("", 0, 0))[2] / _TICK
    out["machine"] = _machine_busy_seconds()
    return out


def _tree(root: int, children: dict[int, list[int]]) -> Iterator[int]:
    stack = [root]
    while stack:
        pid = stack.pop()
        yield pid
        stack.extend(children.get(pid, ()))


def _processes() -> dict[int, tuple[str, int, int]]:
    """pid -> (command name, parent pid, utime + stime in ticks) for every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{entry}/stat").read_text()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            found[int(entry)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def _machine_busy_seconds() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


# --- the report ----------------------------------------------------------------------------------------


def summarise(args: argparse.Namespace, result: dict[str, Any], cpu: dict[str, float], check: Check,
              load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The one-line machine-readable summary."""
    latency = result["latency_ms"]
    ours = sum(cpu.get(k, 0.0) for k in ("roomlog", "nats", "postgres", "generator"))
    return {
        "bench": "send",
        "workers": args.workers,
        "connections": args.connections,
        "rooms": args.rooms,
        "duration_s": round(result["window_seconds"], 3),
        "sends_per_second": round(result["sends_per_second"], 1),
        "latency_ms": {k: round(v, 2) for k, v in latency.items()},
        "errors": {s: n for s, n in result["measured_by_status"].items() if s != "201"},
        "connection_errors": result["connection_errors"],
        "timeouts": result["timeouts"],
        "cpu_cores": {k: round(v, 3) for k, v in cpu.items() if k != "wall_seconds"}
        | {"others": round(max(0.0, cpu.get("machine", 0.0) - ours), 3)},
        "cpu_us_per_send": {k: round(1e6 * cpu.get(k, 0.0) / rate, 1) for k in ("roomlog", "postgres")}
        if (rate := result["sends_per_second"]) else {},
        "generator_cpu_percent": round(result["generator_cpu_percent"], 1),
        "check_ok": check.ok,
        "sent_events": check.sent_events,
        "ok_responses": check.ok_responses,
        "loadavg_before": round(load_before[0], 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
        "target_met": result["sends_per_second"] >= TARGET_SENDS_PER_SECOND
        and latency.get("p99", math.inf) <= TARGET_P99_MS,
    }


def report(summary: dict[str, Any], result: dict[str, Any], cpu: dict[str, float], check: Check) -> None:
    """The human-readable report."""
    lat = result["latency_ms"]
    errors = {s: n for s, n in result["total_by_status"].items() if s != "201"}
    print(f"sends/s       {result['sends_per_second']:,.0f}   ({result['measured_ok']:,} x 201 "
          f"in {result['window_seconds']:.2f} s, workers={summary['workers']}, "
          f"{summary['connections']} connections, {summary['rooms']} rooms)")
    if lat:
        print("latency ms    " + "  ".join(f"{k} {lat[k]:.1f}" for k in ("p50", "p90", "p99", "p99.9", "max", "mean")))
    print(f"errors        {', '.join(f'{s}: {n}' for s, n in errors.items()) or 'none'}"
          f"  (connection errors {result['connection_errors']}, timeouts {result['timeouts']}, "
          f"unanswered at the end {result['unfinished']})")
    for status, sample in result["error_samples"].items():
        print(f"  e.g. {status}: {sample}")
    cores = summary["cpu_cores"]
    print(f"cpu (cores)   roomlog {cores.get('roomlog', 0):.2f}  postgres {cores.get('postgres', 0):.2f}  "
          f"nats {cores.get('nats', 0):.2f}  generator {cores.get('generator', 0):.2f}  "
          f"other processes {cores['others']:.2f}  machine {cores.get('machine', 0):.2f} of {os.cpu_count()}")
    if per_send := summary["cpu_us_per_send"]:
        print(f"cpu per send  roomlog {per_send['roomlog']:.0f} us  postgres {per_send['postgres']:.0f} us  "
              "(CPU time over sends; less sensitive to a busy machine than sends/s)")
    print(f"generator     {result['generator_cpu_seconds']:.2f} s CPU in the window "
          f"({result['generator_cpu_percent']:.1f}% of one core, {result['event_loop']} loop)")
    mismatch = len(check.rooms_with_count_mismatch)
    print(f"check         message.sent events {check.sent_events:,} vs 201 responses {check.ok_responses:,} "
          f"(warm-up and drain included): {'OK' if check.ok else 'FAILED'}; rooms with count mismatch {mismatch}, "
          f"with seq gaps {len(check.rooms_with_seq_gaps)}, duplicate client_msg_ids {check.duplicate_client_msg_ids}")
    if batch := summary.get("appends_per_transaction"):
        print(f"group commit  {batch['mean']:.1f} sends per transaction on average (p50 {batch['p50']}, "
              f"p99 {batch['p99']}, max {batch['max']}; {batch['transactions']:,} transactions)")
    lag = summary.get("search_caught_up_after_s")
    caught_up = f"caught up {lag * 1000:.0f} ms after the load" if lag is not None else "not caught up (or unavailable)"
    print(f"search index  {caught_up}  (the catch-up projection's checkpoint reached the end of the log)")
    raw = summary.get("raw_appends_per_second") or [None, None]
    if None not in raw:
        ratio_verdict = "met" if summary["ratio_target_met"] else "NOT met"
        print(f"raw ceiling   {raw[0]:,.0f} appends/s before the load, {raw[1]:,.0f} after (bench/raw_append.py: "
              f"asyncpg, {summary['connections']} writers, {summary['rooms']} rooms, one transaction per append)")
        print(f"ratio         {summary['ratio_to_raw']:.2f} (sends/s over the raw ceiling's mean); target >= "
              f"{TARGET_RATIO:g} with p99 <= {TARGET_RATIO_P99_MS:g} ms, nothing lost: {ratio_verdict}")
    verdict = "met" if summary["target_met"] else "NOT met"
    print(f"target        >= {TARGET_SENDS_PER_SECOND} sends/s with p99 <= {TARGET_P99_MS:g} ms: {verdict}  "
          f"(loadavg {summary['loadavg_before']} before, {summary['loadavg_after']} after)")


if __name__ == "__main__":
    sys.exit(main())
