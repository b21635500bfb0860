"""Latency of the inbox (`GET /rooms`, `GET /unread`) for a user in many rooms, as the tenant's messages grow.

Starts `roomlog serve` on the embedded default in a fresh data directory, creates the rooms through the public
API (a reader and two writers in each), then grows the tenant's messages in stages (e.g. 100k, then 1M) by
appending through the service's own `Appender` and inline projections straight to its database (the HTTP path
would take most of an hour for a million messages; bench/send.py measures that path). A few messages mention
the reader and the reader has read a part of each room. After each stage it waits for the relay to publish
everything, then times sequential requests and prints p50/p99, and the rows of `messages` the inbox query
reads (EXPLAIN ANALYZE): the number that must not grow with the messages. See bench/README.md.

    .venv/bin/python bench/inbox.py [--rooms 1000] [--stages 100000,1000000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

from send import NO_LIMITS, Api, Server, with_server

READER = "reader"
STATE_FILE = "inbox-bench.json"
TARGET_P99_MS = 30.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    return with_server(_parser().parse_args(argv), run, prefix="roomlog-bench-inbox-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=1000, help="rooms the reader is in (default 1000)")
    p.add_argument("--stages", default="100000,1000000", help="total messages to measure at (default 100000,1000000)")
    p.add_argument("--requests", type=int, default=200, help="timed requests per endpoint and stage (default 200)")
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=["ROOMLOG_ACCESS_LOG=false"], metavar="NAME=VALUE",
                   help="extra environment for the server (repeatable; default ROOMLOG_ACCESS_LOG=false)")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    return p


def run(args: argparse.Namespace, server: Server) -> int:
    """Create the rooms, then for each stage: grow the messages, wait for the relay, time, explain.

    A data directory a run of this bench kept is reused: its tenant, rooms and messages (recorded in
    `inbox-bench.json` there) count towards the stages, so a 1M-message log is generated once."""
    state_file = server.data_dir / STATE_FILE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        print(f"reusing {state['messages']:,} messages in {len(state['rooms'])} rooms", file=sys.stderr)
    else:
        state = {"api_key": server.create_tenant("bench", NO_LIMITS), "rooms": [], "messages": 0}
    api = Api("127.0.0.1", server.port, state["api_key"])
    rooms = state["rooms"]
    if not rooms:
        for i in range(args.rooms):
            status, body = api.call("POST", "/rooms", "w1", {"type": "group", "members": [READER, "w2"],
                                                             "display_name": f"room {i}"})
            assert status == 201, body
            rooms.append(body["room_id"])
        state_file.write_text(json.dumps(state))
    url = server.database_url()
    assert url is not None, "the embedded PostgreSQL's address is unknown"
    results = []
    for total in [int(s) for s in args.stages.split(",")]:
        if total > state["messages"]:
            started = time.monotonic()
            asyncio.run(_grow(url, rooms, state["messages"], total))
            state["messages"] = total
            state_file.write_text(json.dumps(state))
            print(f"{total:,} messages in the tenant (appended in {time.monotonic() - started:.0f} s)",
                  file=sys.stderr)
        elif total < state["messages"]:
            print(f"stage {total:,} skipped: the reused log has {state['messages']:,}", file=sys.stderr)
            continue
        asyncio.run(_wait_for_relay(url))
        stage = {"messages": total, "rooms": len(rooms)}
        for name, path in (("rooms_page", "/rooms?limit=50"), ("rooms_all", "/rooms?limit=100&offset=900"),
                           ("unread", "/unread")):
            stage[name] = _time(api, path, args.requests)
            print(f"{name}: {stage[name]}", file=sys.stderr, flush=True)
        stage["explain"] = asyncio.run(_explain(url))
        results.append(stage)
        print(json.dumps(stage), flush=True)
    _report(results)
    return 0


async def _grow(url: str, rooms: list[str], have: int, total: int) -> None:
    """Append messages round-robin over the rooms until the tenant has `total`."""
    import asyncpg

    from eventstore.append import Appender
    from projections.inline import InlineProjections
    from schemas.api import SendMessage
    from schemas.events import EventMetadata
    from service.domain.messages import decide_send
    from service.identity.ids import new_id

    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    appender = Appender(pool, InlineProjections(), writers=2, max_batch=500)
    appender.start()
    try:
        tenant_id = await pool.fetchval("SELECT tenant_id FROM rooms WHERE room_id = $1", rooms[0])
        per_room = (total - have) // len(rooms)
        chunk = 250

        async def fill(room_id: str) -> None:
            done = 0
            while done < per_room:
                n = min(chunk, per_room - done)
                events = [decide_send(f"w{1 + (done + i) % 2}", SendMessage(
                    content=f"message {done + i} of the bench", mentions=[READER] if (done + i) % 97 == 0 else [],
                ), new_id("msg")) for i in range(n)]
                await appender.append(room_id, list(events), tenant_id=tenant_id,
                                      metadata=EventMetadata(tenant_id, "w1"))
                done += n

        for i in range(0, len(rooms), 8):
            await asyncio.gather(*(fill(r) for r in rooms[i:i + 8]))
        # The reader has read every room up to the middle of its log.
        seqs = await pool.fetch("SELECT stream_id, last_seq FROM streams WHERE stream_id = ANY($1::text[])", rooms)
        from projections.streams import user_stream
        from schemas.events import ReadRecorded
        await appender.append(user_stream(tenant_id, READER),
                              [ReadRecorded(room_id=r["stream_id"], seq=r["last_seq"] // 2) for r in seqs],
                              tenant_id=tenant_id, metadata=EventMetadata(tenant_id, READER), create_stream=True)
    finally:
        await appender.stop()
        await pool.close()


async def _wait_for_relay(url: str, *, give_up: float = 1200.0) -> None:
    """Until the relay has published the whole log (its work would otherwise share the CPU with the timing)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        target = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        started = time.monotonic()
        done = None
        while time.monotonic() - started < give_up:
            done = await conn.fetchval("SELECT min(position) FROM relay_checkpoints")
            if done is not None and done >= target:
                break
            await asyncio.sleep(0.5)
        print(f"relay at {done} of {target} after {time.monotonic() - started:.0f} s", file=sys.stderr)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _time(api: Api, path: str, requests: int) -> dict[str, float]:
    for _ in range(10):  # warm the connection and the plan caches
        api.call("GET", path, READER)
    took = []
    for _ in range(requests):
        t = time.perf_counter()
        status, _ = api.call("GET", path, READER)
        took.append((time.perf_counter() - t) * 1000)
        assert status == 200
    took.sort()
    return {"p50_ms": round(statistics.median(took), 2), "p99_ms": round(took[int(len(took) * 0.99) - 1], 2)}


async def _explain(url: str) -> dict[str, Any]:
    """Rows of `messages` the inbox query reads, and its buffers, for a page and for every room."""
    import asyncpg

    from projections.inbox import _PAGE, PREVIEW_CHARS

    conn = await asyncpg.connect(url)
    try:
        tenant_id = await conn.fetchval("SELECT tenant_id FROM members WHERE user_id = $1 LIMIT 1", READER)
        out = {}
        for name, limit in (("page", 50), ("all", 1000)):
            [plan] = json.loads(await conn.fetchval(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {_PAGE}", tenant_id, READER, None, None, None, None, None,
                limit, 0, None, PREVIEW_CHARS, None,
            ))
            out[name] = {"messages_rows_read": _rows_of(plan["Plan"], "messages"),
                         "messages_rows_by_index": _rows_by_index(plan["Plan"], "messages", {}),
                         "shared_buffers": plan["Plan"].get("Shared Hit Blocks", 0)
                         + plan["Plan"].get("Shared Read Blocks", 0),
                         "execution_ms": round(plan["Execution Time"], 2)}
        return out
    finally:
        await conn.close()


def _rows_of(node: dict[str, Any], relation: str) -> int:
    """Rows every scan of `relation` in a plan produced, over all its loops."""
    own = int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1)) if node.get("Relation Name") == relation else 0
    return own + sum(_rows_of(child, relation) for child in node.get("Plans", []))


def _rows_by_index(node: dict[str, Any], relation: str, into: dict[str, int]) -> dict[str, int]:
    """Rows each index (or sequential scan) of `relation` produced in a plan, over all loops."""
    if node.get("Relation Name") == relation:
        key = node.get("Index Name") or node["Node Type"]
        into[key] = into.get(key, 0) + int(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
    for child in node.get("Plans", []):
        _rows_by_index(child, relation, into)
    return into


def _report(results: list[dict[str, Any]]) -> None:
    print(f"\ninbox of a user in {results[0]['rooms']:,} rooms (target p99 <= {TARGET_P99_MS} ms)")
    print(f"{'messages':>10} {'GET /rooms p50/p99':>20} {'last page p50/p99':>20} {'GET /unread p50/p99':>21}"
          f" {'messages rows read (page / all)':>32}")
    def pair(r: dict[str, Any], name: str) -> str:
        return f"{r[name]['p50_ms']:.1f} / {r[name]['p99_ms']:.1f} ms"

    for r in results:
        rows = f"{r['explain']['page']['messages_rows_read']:,} / {r['explain']['all']['messages_rows_read']:,}"
        print(f"{r['messages']:>10,} {pair(r, 'rooms_page'):>20} {pair(r, 'rooms_all'):>20}"
              f" {pair(r, 'unread'):>21} {rows:>32}")


if __name__ == "__main__":
    sys.exit(main())
