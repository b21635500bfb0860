"""Fan-out through the real service: paced senders over REST, W WebSocket receivers, delivery rate and latency.

Starts `roomlog serve` on the embedded default in a fresh data directory (like bench/send.py, whose server
handling this reuses), creates R rooms of M members each over W receiving users, connects every receiver
and syncs its rooms, then posts messages at --rate for --duration seconds (after --warmup) from a paced
sender process. Each message carries its send time in `meta.t`; the receiver process measures
send-to-receive latency from it and checks every (connection, room) for seq order, gaps and duplicates.
Then a resume run: one client syncs a room of --resume-events events from seq 0 and times the catch-up,
alternately with one frame per event and with events.batch frames (`"batch": true` in its sync frame).

    .venv/bin/python bench/fanout.py [--rate 1000] [--rooms 100] [--members 10] [--receivers 100]
                                     [--duration 15] [--warmup 3] [--workers 1] [--profile /tmp/fanout.txt]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from send import (
    _TICK,
    NO_LIMITS,
    Api,
    Check,
    Server,
    _processes,
    _project_root,
    cpu_sample,
    start_profiler,
    verify,
    with_server,
)

HERE = Path(__file__).resolve().parent
TARGET_RATE = 1000
TARGET_MEMBERS = 10
TARGET_P99_MS = 150.0
TARGET_RESUME_SECONDS = 0.1  # with events.batch frames


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when a message was lost or delivered twice."""
    args = _parser().parse_args(argv)
    if args.receivers < args.members:
        raise SystemExit("--receivers must be at least --members (every room has --members distinct users)")
    return with_server(args, run, prefix="roomlog-fanout-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=TARGET_RATE, help="messages/s over all senders (default 1000)")
    p.add_argument("--rooms", type=int, default=100, help="rooms (default 100)")
    p.add_argument("--members", type=int, default=TARGET_MEMBERS, help="members per room, all online (default 10)")
    p.add_argument("--receivers", type=int, default=100,
                   help="WebSocket receivers, one user each; a user is in rooms*members/receivers rooms (default 100)")
    p.add_argument("--connections", type=int, default=32, help="sender keep-alive HTTP connections (default 32)")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds (default 15)")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before (default 3)")
    p.add_argument("--no-deflate", action="store_true", help="receivers do not offer permessage-deflate")
    p.add_argument("--resume-events", type=int, default=10_000, help="events in the resumed room (default 10000)")
    p.add_argument("--resume-runs", type=int, default=3,
                   help="timed catch-ups of that room in each frame mode (default 3)")
    p.add_argument("--skip-resume", action="store_true", help="only the fan-out part")
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server, e.g. ROOMLOG_ACCESS_LOG=false (repeatable)")
    p.add_argument("--profile", metavar="PATH", help="py-spy the server during the measured window (see send.py)")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    return p


# --- set-up ----------------------------------------------------------------------------------------------


def create_rooms(api: Api, rooms: int, members: int, receivers: int) -> list[dict[str, Any]]:
    """Group rooms whose members are consecutive receiving users (wrapping around), the first the creator."""
    created = []
    for r in range(rooms):
        users = [f"fan-u{(r * members + m) % receivers}" for m in range(members)]
        status, body = api.call("POST", "/rooms", users[0], {"type": "group", "members": users[1:]})
        if status != 201:
            raise SystemExit(f"POST /rooms answered {status}: {body}")
        created.append({"room_id": body["room_id"], "members": users, "last_seq": body["last_seq"]})
    return created


def receivers_config(api: Api, server: Server, rooms: list[dict[str, Any]], deflate: bool) -> dict[str, Any]:
    """Every receiving user with a WebSocket token and its rooms at their current last seq."""
    by_user: dict[str, dict[str, int]] = {}
    for room in rooms:
        for user in room["members"]:
            by_user.setdefault(user, {})[room["room_id"]] = room["last_seq"]
    users = []
    for user, have in by_user.items():
        status, body = api.call("POST", "/tokens", user)
        if status != 201:
            raise SystemExit(f"POST /tokens answered {status}: {body}")
        users.append({"user_id": user, "token": body["token"], "rooms": have})
    return {"host": "127.0.0.1", "port": server.port, "users": users, "deflate": deflate}


# --- the load processes ------------------------------------------------------------------------------------


@dataclass
class Load:
    """A bench/_wsload.py process and the lines it has printed."""

    mode: str
    proc: subprocess.Popen[str] = field(init=False)

    def start(self, config: dict[str, Any]) -> Load:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_wsload.py"), self.mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.write(config)
        return self

    def write(self, obj: object) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(obj) + "\n")
        stdin.flush()

    def line(self) -> str:
        """The next line it prints ('' when it exited)."""
        stdout = self.proc.stdout
        assert stdout is not None
        return stdout.readline().strip()

    def until(self, marker: str) -> None:
        while (line := self.line()) != marker:
            if not line and self.proc.poll() is not None:
                raise SystemExit(f"_wsload.py {self.mode} exited with {self.proc.returncode} before '{marker}'")

    def result(self) -> dict[str, Any]:
        """Its last line, a JSON object."""
        last = ""
        while line := self.line():
            last = line
        if self.proc.wait() != 0 or not last.startswith("{"):
            raise SystemExit(f"_wsload.py {self.mode} failed ({self.proc.returncode})")
        result: dict[str, Any] = json.loads(last)
        return result


def process_cpu(pid: int) -> float:
    """CPU seconds used so far by one process."""
    return _processes().get(pid, ("", 0, 0))[2] / _TICK


# --- the run ---------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, server: Server) -> int:
    """Set up, fan out, check, resume, report."""
    load_before = os.getloadavg()
    api = Api("127.0.0.1", server.port, server.create_tenant("fanout", NO_LIMITS))
    rooms = create_rooms(api, args.rooms, args.members, args.receivers)
    print(f"fan-out: {args.rate:g} msg/s into {args.rooms} rooms x {args.members} members over {args.receivers} "
          f"receivers, {args.warmup:g} s warm-up + {args.duration:g} s measured, server workers={args.workers} "
          f"(loadavg before {load_before[0]:.2f})", file=sys.stderr)
    receivers = Load("receive").start(receivers_config(api, server, rooms, deflate=not args.no_deflate))
    receivers.until("ready")
    senders = Load("send").start({
        "host": "127.0.0.1", "port": server.port, "api_key": api.api_key, "rooms": rooms,
        "connections": args.connections, "warmup": args.warmup, "duration": args.duration,
        "run_id": secrets.token_hex(4), "content": "fan-out", "rate": args.rate,
    })
    senders.until("warmup-done")
    window_start, cpu_start = time.time(), cpu_sample(server, receivers.proc.pid)
    senders_cpu_start = process_cpu(senders.proc.pid)
    spy = start_profiler(server, args.profile, args.duration) if args.profile else None
    senders.until("measure-done")
    window_end, cpu_end = time.time(), cpu_sample(server, receivers.proc.pid)
    senders_cpu = process_cpu(senders.proc.pid) - senders_cpu_start
    sent = senders.result()
    expect = {room["room_id"]: last_seq(api, room) for room in rooms}
    receivers.write({"window": [window_start, window_end], "expect": expect})
    received = receivers.result()
    if spy is not None:
        spy.wait()
    wall = window_end - window_start
    cpu = {k: (cpu_end[k] - cpu_start.get(k, 0.0)) / wall for k in cpu_end}
    cpu["receivers"] = cpu.pop("generator")
    cpu["senders"] = senders_cpu / wall
    uncertain = sent["unfinished"] + sent["timeouts"] + sent["connection_errors"]
    check = verify(api, rooms, sent["ok_per_room"], uncertain=uncertain)
    resumed = None if args.skip_resume else resume(args, api, server)
    summary = summarise(args, sent, received, cpu, check, resumed, load_before)
    report(summary, sent, received, check, resumed)
    if args.profile and not args.profile.endswith((".svg", ".json")):
        from _profile import summarise_collapsed  # bench/ is on sys.path when run as a script

        summarise_collapsed(Path(args.profile), root=_project_root())
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if summary["delivery_ok"] and check.ok else 1


def last_seq(api: Api, room: dict[str, Any]) -> int:
    status, body = api.call("GET", f"/rooms/{room['room_id']}", room["members"][0])
    if status != 200:
        raise SystemExit(f"GET /rooms/{room['room_id']} answered {status}: {body}")
    return int(body["last_seq"])


def resume(args: argparse.Namespace, api: Api, server: Server) -> dict[str, Any]:
    """Fill one room with --resume-events events, then time catch-ups from seq 0."""
    users = ["resume-a", "resume-b"]
    status, body = api.call("POST", "/rooms", users[0], {"type": "group", "members": users[1:]})
    if status != 201:
        raise SystemExit(f"POST /rooms answered {status}: {body}")
    room = {"room_id": body["room_id"], "members": users}
    messages = max(0, args.resume_events - body["last_seq"])
    filled = Load("fill").start({
        "host": "127.0.0.1", "port": server.port, "api_key": api.api_key, "rooms": [room],
        "connections": args.connections, "run_id": secrets.token_hex(4), "content": "catch me up", "count": messages,
    }).result()
    expect = last_seq(api, room)
    _, token = api.call("POST", "/tokens", users[1])
    timed = Load("resume").start({
        "host": "127.0.0.1", "port": server.port, "token": token["token"], "room_id": room["room_id"],
        "expect_last": expect, "runs": args.resume_runs, "deflate": not args.no_deflate,
    }).result()
    return {"events": expect, "fill_seconds": filled["seconds"], **timed}


# --- the report --------------------------------------------------------------------------------------------------


def summarise(args: argparse.Namespace, sent: dict[str, Any], received: dict[str, Any], cpu: dict[str, float],
              check: Check, resumed: dict[str, Any] | None, load_before: tuple[float, float, float]) -> dict[str, Any]:
    """The one-line machine-readable summary."""
    window = received["window_seconds"]
    latency = received["latency_ms"]
    ours = sum(cpu.get(k, 0.0) for k in ("roomlog", "nats", "postgres", "receivers", "senders"))
    delivered_per_s = received["delivered_in_window"] / window if window else 0.0
    delivery_ok = received["lost"] == 0 and received["duplicates"] == 0
    best_resume = min((r["seconds"] for r in resumed["runs"] if r["batch"]), default=math.inf) if resumed else None
    resume_ok = resumed is None or all(r["events"] == resumed["expect_last"] and not r["duplicates"]
                                       and not r["missing"] for r in resumed["runs"])
    return {
        "bench": "fanout",
        "workers": args.workers,
        "rooms": args.rooms,
        "members": args.members,
        "receivers": args.receivers,
        "deflate": not args.no_deflate,
        "target_rate": args.rate,
        "sends_per_second": round(sent["sends_per_second"], 1),
        "send_latency_ms": {k: round(v, 2) for k, v in sent["latency_ms"].items()},
        "deliveries_per_second": round(delivered_per_s, 1),
        "latency_ms": {k: round(v, 2) for k, v in latency.items()},
        "lost": received["lost"],
        "duplicates": received["duplicates"],
        "resyncs": received["resyncs"],
        "reconnects": received["reconnects"],
        "cpu_cores": {k: round(v, 3) for k, v in cpu.items() if k != "wall_seconds"}
        | {"others": round(max(0.0, cpu.get("machine", 0.0) - ours), 3)},
        "resume_seconds": [round(r["seconds"], 3) for r in resumed["runs"] if not r["batch"]] if resumed else None,
        "resume_batch_seconds": [round(r["seconds"], 3) for r in resumed["runs"] if r["batch"]] if resumed else None,
        "resume_events": resumed["events"] if resumed else None,
        "delivery_ok": delivery_ok and resume_ok,
        "check_ok": check.ok,
        "loadavg_before": round(load_before[0], 2),
        "loadavg_after": round(os.getloadavg()[0], 2),
        "target_met": sent["sends_per_second"] >= 0.97 * TARGET_RATE and args.members >= TARGET_MEMBERS
        and delivery_ok and latency.get("p99", math.inf) <= TARGET_P99_MS,
        "resume_target_met": None if best_resume is None else best_resume < TARGET_RESUME_SECONDS and resume_ok,
    }


def report(summary: dict[str, Any], sent: dict[str, Any], received: dict[str, Any], check: Check,
           resumed: dict[str, Any] | None) -> None:
    """The human-readable report."""
    lat = received["latency_ms"]
    send_lat = sent["latency_ms"]
    print(f"sends/s       {sent['sends_per_second']:,.0f} of {summary['target_rate']:,.0f} wanted  "
          f"({sent['measured_ok']:,} x 201 in {sent['window_seconds']:.2f} s; most sends owed at once "
          f"{sent['most_owed']}; POST latency p50 {send_lat.get('p50', 0):.1f} p99 {send_lat.get('p99', 0):.1f} ms)")
    print(f"deliveries/s  {summary['deliveries_per_second']:,.0f}  ({received['delivered_in_window']:,} message.new "
          f"frames of messages sent in the window, {summary['receivers']} connections, "
          f"{summary['rooms']} rooms x {summary['members']} members, deflate {'on' if summary['deflate'] else 'off'})")
    if lat:
        print("latency ms    send-to-receive " + "  ".join(
            f"{k} {lat[k]:.1f}" for k in ("p50", "p90", "p99", "p99.9", "max", "mean")))
    print(f"delivery      lost {received['lost']}  duplicates {received['duplicates']}  gaps {received['gaps']}  "
          f"resyncs {received['resyncs']}  reconnects {received['reconnects']}  errors {len(received['errors'])}  "
          f"(all receivers caught up {received['drain_seconds']:.2f} s after the senders stopped)")
    for error in received["errors"][:3]:
        print(f"  e.g. {error}")
    cores = summary["cpu_cores"]
    print(f"cpu (cores)   roomlog {cores.get('roomlog', 0):.2f}  postgres {cores.get('postgres', 0):.2f}  "
          f"nats {cores.get('nats', 0):.2f}  receivers {cores.get('receivers', 0):.2f}  "
          f"senders {cores.get('senders', 0):.2f}  other processes {cores['others']:.2f}  "
          f"machine {cores.get('machine', 0):.2f} of {os.cpu_count()}")
    print(f"generators    receivers {received['cpu_seconds']:.2f} s CPU in all, senders "
          f"{sent['generator_cpu_seconds']:.2f} s in the window ({received['event_loop']} loop)")
    mismatch = len(check.rooms_with_count_mismatch)
    print(f"check         message.sent events {check.sent_events:,} vs 201 responses {check.ok_responses:,}: "
          f"{'OK' if check.ok else 'FAILED'}; rooms with count mismatch {mismatch}, "
          f"with seq gaps {len(check.rooms_with_seq_gaps)}, duplicate client_msg_ids {check.duplicate_client_msg_ids}")
    if resumed:
        print(f"resume        from seq 0 of {resumed['events']:,} events (filled in {resumed['fill_seconds']:.1f} s)")
        for batch, label in ((False, "one frame per event"), (True, "events.batch frames")):
            runs = "  ".join(f"{r['seconds']:.3f} s ({r['events']:,} events, {r['events'] / r['seconds']:,.0f}/s)"
                             for r in resumed["runs"] if r["batch"] is batch)
            print(f"  {label:21} {runs}")
    verdict = "met" if summary["target_met"] else "NOT met"
    print(f"target        {TARGET_RATE} msg/s into rooms of {TARGET_MEMBERS} online members with p99 <= "
          f"{TARGET_P99_MS:g} ms, nothing lost or doubled: {verdict}  "
          f"(loadavg {summary['loadavg_before']} before, {summary['loadavg_after']} after)")
    if summary["resume_target_met"] is not None:
        print(f"target        resume of {resumed['events'] if resumed else 0:,} events in events.batch frames "
              f"< {TARGET_RESUME_SECONDS:g} s: "
              f"{'met' if summary['resume_target_met'] else 'NOT met'}")


if __name__ == "__main__":
    sys.exit(main())
