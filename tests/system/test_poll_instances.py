"""Long-poll across two real `roomlog serve` processes on one PostgreSQL and one NATS.

A poll waiting on instance 2 wakes when a message is sent through instance 1: the event reaches it over
the NATS fan-out the WebSocket hub uses, not by instance 2 polling the database.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Tenant, make_tenant
from tests.system._servers import Api, start_serve
from tests.system.conftest import Processes, Serve

ROUNDS = 5


@pytest.fixture(scope="module")
async def pair(tmp_path_factory: pytest.TempPathFactory, database_url: str, nats_url: str
               ) -> AsyncIterator[list[Serve]]:
    # One poll per user on the second instance: a second poll's 429 tells the test the first one waits.
    with Processes(tmp_path_factory.mktemp("poll-instances")) as procs:
        serves = [await start_serve(procs, database_url=database_url, nats_url=nats_url),
                  await start_serve(procs, database_url=database_url, nats_url=nats_url,
                                    ROOMLOG_POLL_MAX_PER_USER="1")]
        for serve in serves:
            await _until_ready(serve)
        yield serves


async def _until_ready(serve: Serve) -> None:
    async with httpx.AsyncClient(base_url=serve.base_url) as http:
        for _ in range(400):
            if (await http.get("/health/ready")).status_code == 200:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("instance never became ready")


async def _waiting_poll(second: Api, user: str, rooms: str) -> asyncio.Task[httpx.Response]:
    """A poll of `user` on `second` that is waiting there: a probe of the same user is refused 429 meanwhile.

    A probe may take the slot first (the poll is then the one refused): start the poll again.
    """
    for _ in range(20):
        waiting = asyncio.create_task(
            second.http.get("/poll", params={"rooms": rooms, "timeout": 20}, headers=second.tenant.as_user(user))
        )
        for _ in range(60):
            # Probes hold the slot only briefly; spaced out, the waiting poll finds it free even on a busy machine.
            await asyncio.sleep(0.05)
            probe = await second.http.get("/poll", params={"rooms": rooms, "timeout": 0},
                                          headers=second.tenant.as_user(user))
            if probe.status_code == 429:
                return waiting
            if waiting.done():
                break
        assert waiting.done() and waiting.result().status_code == 429, waiting
    raise AssertionError("the poll never started waiting")


async def test_a_poll_on_one_instance_wakes_within_100_ms_of_a_send_on_the_other(
    pair: list[Serve], database_url: str
) -> None:
    tenant: Tenant = await make_tenant(database_url)
    async with Api(pair[0].base_url, tenant) as first, Api(pair[1].base_url, tenant) as second:
        room = await first.create_room("ann", ["bob"])
        room_id, seq = room["room_id"], room["last_seq"]
        latencies = []
        for n in range(ROUNDS):
            rooms = f"{room_id}:{seq}"
            waiting = await _waiting_poll(second, "ann", rooms)
            assert not waiting.done()
            sent = await first.send(room_id, "bob", f"round {n}")
            committed = time.monotonic()
            answer = (await asyncio.wait_for(waiting, 10)).json()
            latencies.append(time.monotonic() - committed)
            events = answer["rooms"][room_id]["events"]
            assert answer["timed_out"] is False
            assert [e["seq"] for e in events] == [sent["seq"]]
            assert events[0]["data"]["content"] == f"round {n}"
            seq = answer["rooms"][room_id]["last_seq"]
        print("wake-up after a send on the other instance (ms):", [round(s * 1000, 1) for s in latencies])
        # The median, so one scheduling hiccup of a shared CI machine does not decide it.
        assert statistics.median(latencies) < 0.1, latencies


async def test_a_poll_on_either_instance_times_out_empty_and_refuses_non_members(
    pair: list[Serve], database_url: str
) -> None:
    tenant: Tenant = await make_tenant(database_url)
    async with Api(pair[0].base_url, tenant) as first, Api(pair[1].base_url, tenant) as second:
        room = await first.create_room("ann", ["bob"])
        rooms = f"{room['room_id']}:{room['last_seq']}"
        empty = (await second.http.get("/poll", params={"rooms": rooms, "timeout": 1},
                                       headers=tenant.as_user("bob"))).json()
        assert empty["timed_out"] is True and empty["rooms"][room["room_id"]]["events"] == []
        outsider = await second.http.get("/poll", params={"rooms": rooms, "timeout": 1},
                                         headers=tenant.as_user("eve"))
        assert outsider.status_code == 403 and outsider.json()["error"]["code"] == "NOT_A_MEMBER"
