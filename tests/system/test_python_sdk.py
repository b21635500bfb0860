"""The Python SDK against a real `roomlog serve` that is restarted under it: exact resume, Retry-After honoured.

One serve process with a low per-user send limit: a burst of sends through the SDK meets 429s and every send
still lands exactly once (the SDK waits out `Retry-After` and repeats with the same client_msg_id). Then the
process is stopped (SIGTERM: clients get `server.shutdown`) and started again on the same port while a
subscription is open, and messages are sent while the subscriber is away: it reconnects by itself and sees
every seq of the room exactly once, in order.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
from roomlog_client import RoomlogClient

from service.cli.embedded import free_port
from tests.conftest import make_tenant
from tests.system.conftest import Processes, roomlog_env

ENV = {"ROOMLOG_DEFAULT_SEND_RATE_LIMIT": "5", "ROOMLOG_DEFAULT_RATE_LIMIT": "0", "ROOMLOG_ACCESS_LOG": "false"}


async def test_sdk_resumes_exactly_across_a_server_restart_and_waits_out_rate_limits(
        processes: Processes, database_url: str, nats_url: str) -> None:
    tenant = await make_tenant(database_url)
    port = free_port()
    env = roomlog_env(database_url=database_url, nats_url=nats_url, **ENV)
    serve = processes.serve(env=env, port=port)
    await serve.wait_healthy()

    retries: list[int] = []

    def record(attempt: int, seconds: float, failure: Exception | None, answer: httpx.Response | None) -> None:
        retries.append(answer.status_code if answer is not None else 0)

    base = serve.base_url
    async with RoomlogClient(base, api_key=tenant.api_key, user_id="ana", on_retry=record) as ana:
        room_id = (await ana.post_rooms({"type": "group", "members": []}))["room_id"]
        states: list[str] = []
        seen: list[int] = []
        subscription = ana.subscribe([room_id], on_state=states.append)
        reached: dict[int, asyncio.Event] = {}

        async def consume() -> None:
            async for event in subscription:
                seen.append(event["seq"])
                if event["seq"] in reached:
                    reached[event["seq"]].set()

        def waiter(seq: int) -> asyncio.Event:
            # Already handed out (the events can arrive before the test asks for them): set from the start.
            event = reached.setdefault(seq, asyncio.Event())
            if seq in seen:
                event.set()
            return event

        consumer = asyncio.create_task(consume())
        try:
            # 12 sends at once against 5 per second: some are refused with 429 and repeated; each lands once.
            burst: list[Any] = await asyncio.gather(*(ana.send_message(room_id, f"burst {n}") for n in range(12)))
            assert 429 in retries
            assert len({sent["message_id"] for sent in burst}) == 12
            last = max(sent["seq"] for sent in burst)
            async with asyncio.timeout(20):
                await waiter(last).wait()

            # Stop the server under the open subscription, start it again, and write while the client is away.
            assert await serve.signal_and_wait(signal.SIGTERM) == 0
            serve = processes.serve(env=env, port=port)
            await serve.wait_healthy()
            async with RoomlogClient(base, api_key=tenant.api_key, user_id="bo") as bo:
                await ana.post_rooms_room_id_members(room_id, {"user_ids": ["bo"]})
                for n in range(5):
                    await bo.send_message(room_id, f"while away {n}")
                final = (await bo.get_rooms_room_id(room_id))["last_seq"]
            async with asyncio.timeout(30):
                await waiter(final).wait()
        finally:
            await subscription.close()
            consumer.cancel()
        assert seen == list(range(1, final + 1))
        assert "reconnecting" in states and subscription.reconnects >= 1
        messages = [m async for m in ana.iter_messages(room_id)]
        assert len(messages) == 17
