"""Write a synthetic log of N events for replay benchmarks: rooms with members, messages, edits, reactions,
deletions and acks, with gapless seqs, straight into `events` and `streams` with COPY.

    .venv/bin/python bench/make_log.py DATABASE_URL [--events 1000000] [--rooms 2000] [--seed 1]

The database must be migrated (`roomlog migrate`); the log goes to a new tenant. Read models are not
built: run `roomlog replay` next (that is the benchmark). Prints the tenant id and the rate it wrote at.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.events import (
    AckRecorded,
    Event,
    EventMetadata,
    MemberJoined,
    MessageDeleted,
    MessageEdited,
    MessageSent,
    ReactionAdded,
    RoomCreated,
    encode_event,
    encode_metadata,
    type_of,
)

COLUMNS = ("stream_id", "seq", "tenant_id", "type", "data", "metadata", "created_at")
CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=2000)
    parser.add_argument("--members", type=int, default=5, help="members per room")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(write_log(args.database_url, events=args.events, rooms=args.rooms, members=args.members,
                          seed=args.seed))


class _Log:
    def __init__(self, tenant_id: str, started: datetime) -> None:
        self.tenant_id = tenant_id
        self.seqs: dict[str, int] = {}
        self.at = started
        self.rows: list[tuple[object, ...]] = []
        self.count = 0

    def add(self, stream_id: str, event: Event, actor: str) -> None:
        seq = self.seqs.get(stream_id, 0) + 1
        self.seqs[stream_id] = seq
        self.at += timedelta(milliseconds=3)
        meta = encode_metadata(EventMetadata(tenant_id=self.tenant_id, actor=actor))
        self.rows.append((stream_id, seq, self.tenant_id, type_of(event), encode_event(event), meta, self.at))
        self.count += 1


async def write_log(database_url: str, *, events: int, rooms: int, members: int, seed: int) -> str:
    """Write the log; the new tenant's id."""
    rng = random.Random(seed)
    tenant_id = f"tn_bench_{uuid.uuid4().hex[:12]}"
    log = _Log(tenant_id, datetime(2025, 1, 1, tzinfo=UTC))
    conn = await asyncpg.connect(database_url)
    started = time.perf_counter()
    try:
        await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, 'bench')", tenant_id)
        room_ids = [f"room_bench_{seed}_{i}" for i in range(rooms)]
        people = {r: [f"user{rng.randrange(rooms * members)}" for _ in range(members)] for r in room_ids}
        for room in room_ids:
            owner = people[room][0]
            log.add(room, RoomCreated(room_id=room, room_type="group", created_by=owner, name=f"room {room}"), owner)
            for i, user in enumerate(dict.fromkeys(people[room])):
                log.add(room, MemberJoined(user_id=user, role="admin" if i == 0 else "member", added_by=owner), owner)
        sent: dict[str, list[str]] = {r: [] for r in room_ids}
        n = 0
        while log.count < events:
            room = rng.choice(room_ids)
            user = rng.choice(people[room])
            roll = rng.random()
            if roll < 0.70 or not sent[room]:
                n += 1
                message_id = f"msg_bench_{seed}_{n}"
                sent[room].append(message_id)
                words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(3, 15)))
                log.add(room, MessageSent(message_id=message_id, sender_id=user, content=words), user)
            elif roll < 0.80:
                log.add(room, MessageEdited(message_id=rng.choice(sent[room]), edited_by=user, content="edited"), user)
            elif roll < 0.90:
                log.add(room, ReactionAdded(message_id=rng.choice(sent[room]), user_id=user, emoji="👍"), user)
            elif roll < 0.92:
                log.add(room, MessageDeleted(message_id=sent[room].pop(), deleted_by=user), user)
            else:
                log.add(f"user:{tenant_id}:{user}", AckRecorded(room_id=room, seq=log.seqs[room]), user)
            if len(log.rows) >= CHUNK:
                await _flush(conn, log)
        await _flush(conn, log)
        await conn.copy_records_to_table(
            "streams", records=[(s, tenant_id, last) for s, last in log.seqs.items()],
            columns=("stream_id", "tenant_id", "last_seq"),
        )
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()
    seconds = time.perf_counter() - started
    print(f"tenant {tenant_id}: {log.count} events in {len(log.seqs)} streams, {seconds:.1f}s"
          f" ({log.count / seconds:,.0f} events/s written)")
    return tenant_id


async def _flush(conn: asyncpg.Connection, log: _Log) -> None:
    await conn.copy_records_to_table("events", records=log.rows, columns=COLUMNS)
    log.rows.clear()


_WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey",
    "hello", "thanks", "ok", "meeting", "later",
)


if __name__ == "__main__":
    main()
