"""The HTTP floor: sends/s and CPU per request of uvicorn alone, before roomlog does any work.

Runs uvicorn with the settings `roomlog serve` uses (uvloop, httptools, no access log) on two trivial
apps from bench/_floor_app.py — bare ASGI, and Starlette with one route — and drives each with the
same load generator and request shape as bench/send.py (32 connections, one request in flight each).
The numbers bound what any Python service on this stack can do per core on this machine; compare
them with `cpu per send` in bench/send.py.

    .venv/bin/python bench/http_floor.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from send import _free_port

HERE = Path(__file__).resolve().parent
_TICK = os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    args = p.parse_args()
    for app in ("raw", "starlette"):
        rate, cpu_us = measure(app, args)
        print(f"{app:10} {rate:8,.0f} requests/s   server CPU {cpu_us:5.0f} us per request")
    return 0


def measure(app: str, args: argparse.Namespace) -> tuple[float, float]:
    """(requests/s, server CPU µs per request) for one app."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"_floor_app:{app}", "--app-dir", str(HERE), "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        rooms = [{"room_id": f"room_{i}", "members": ["alice", "bob"]} for i in range(100)]
        config = {"host": "127.0.0.1", "port": port, "api_key": "k", "rooms": rooms,
                  "connections": args.connections, "warmup": args.warmup, "duration": args.duration,
                  "run_id": "floor"}
        gen = subprocess.Popen([sys.executable, str(HERE / "_loadgen.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        assert gen.stdin is not None and gen.stdout is not None
        gen.stdin.write(json.dumps(config))
        gen.stdin.close()
        started = cpu = 0.0
        result = None
        for line in gen.stdout:
            if line.strip() == "warmup-done":
                cpu, started = _cpu_seconds(server.pid), time.monotonic()
            elif line.strip() == "measure-done":
                cpu, wall = _cpu_seconds(server.pid) - cpu, time.monotonic() - started
            elif line.startswith("{"):
                result = json.loads(line)
        gen.wait()
        assert result is not None
        done = sum(result["measured_by_status"].values())
        return done / wall, cpu / done * 1e6
    finally:
        server.terminate()
        server.wait(10)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"uvicorn did not listen on {port}") from None
            time.sleep(0.1)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


if __name__ == "__main__":
    raise SystemExit(main())
