"""`roomlog replay` resumes after an interruption: a SIGKILLed run and a run stopped by an exception (as Ctrl-C
stops it) leave their shadow tables and position, and the next run carries on from there to the same result."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import pytest

from bench.make_log import write_log
from projections.replay import ALL_PROJECTIONS, ReplayProgress, replay
from tests.conftest import create_database
from tests.system.conftest import ROOMLOG, roomlog_env, run_roomlog

EVENTS = 3000


@pytest.fixture(scope="module")
async def log_url(pg_server_url: str) -> str:
    """A fresh database holding a generated log of a few thousand events (read models built once)."""
    url = await create_database(pg_server_url, "roomlog_resume")
    await write_log(url, events=EVENTS, rooms=20, members=4, seed=7)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3)
    try:
        await replay(pool, ALL_PROJECTIONS)
    finally:
        await pool.close()
    return url


async def _shadow_position(conn: asyncpg.Connection) -> int:
    if not await conn.fetchval("SELECT to_regclass('rl_shadow.replay_state') IS NOT NULL"):
        return 0
    return int(await conn.fetchval("SELECT position FROM rl_shadow.replay_state") or 0)


async def test_a_sigkilled_replay_resumes_where_it_stopped(log_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        ROOMLOG, "replay", "--batch-size", "20", "--parallel", "1", env=roomlog_env(database_url=log_url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    conn = await asyncpg.connect(log_url)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while (position := await _shadow_position(conn)) < 200:
            assert asyncio.get_running_loop().time() < deadline, "the replay made no progress"
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        stopped_at = await _shadow_position(conn)
    finally:
        await conn.close()
    assert position <= stopped_at < EVENTS

    done = await run_roomlog("replay", "--verify", env=roomlog_env(database_url=log_url))
    assert done.returncode == 0, done.stderr
    assert f"resumed from position {stopped_at})" in done.stdout
    assert f"replayed {EVENTS - stopped_at} events" in done.stdout
    assert done.stdout.count("identical") == sum(len(p.tables) for p in ALL_PROJECTIONS)


class Interrupted(Exception):
    pass


async def test_a_replay_stopped_by_an_exception_resumes_and_verifies_identical(log_url: str) -> None:
    pool = await asyncpg.create_pool(log_url, min_size=1, max_size=3)
    try:
        def stop_after_a_few(progress: ReplayProgress) -> None:
            if progress.events >= 500:
                raise Interrupted

        with pytest.raises(Interrupted):
            await replay(pool, ALL_PROJECTIONS, batch_size=100, parallel=2, on_progress=stop_after_a_few)
        report = await replay(pool, ALL_PROJECTIONS, verify=True, batch_size=1000, parallel=2)
    finally:
        await pool.close()
    assert report.resumed_from == 500
    assert report.events == EVENTS - 500
    assert set(report.differences.values()) == {0}, report.differences
