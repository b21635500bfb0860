"""Bots end to end: real PostgreSQL, NATS, the service on a real port, and a local HTTP bot served by uvicorn.

The module runs its own nats-server and database with fast retries (3 attempts, waits of 0.2 and 0.4 s):
JetStream's consumer configuration lives in the NATS server, so the session runtime's defaults must not
share it. The bot verifies each call's signature, replies with the reply token it was given, and its reply
reaches a human's WebSocket as an ordinary message of the bot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from schemas.config import Settings
from service.app import create_app
from service.cli.embedded import NatsServer
from service.realtime.jetstream import DELIVERIES_STREAM, DELIVERY_PRODUCER, EVENTS_STREAM, WEBHOOK_CONSUMER
from service.runtime import Runtime, start_runtime, stop_runtime
from tests.conftest import Tenant, create_database, make_tenant, serving

BACKOFF = (0.2, 0.4)
MAX_DELIVER = 3
SECRET = "bot-secret-" + uuid.uuid4().hex


@dataclass
class BotServer:
    """A bot: records each call (headers, body, whether its signature verified) and answers as `mode` says."""

    api: str = ""  # the service's base URL, for replies
    mode: str = "reply"  # reply: answer 200 and post a message; fail: answer 500
    reply_text: dict[str, str] = field(default_factory=dict)  # bot id -> what it answers
    calls: list[tuple[dict[str, str], dict[str, Any], bool]] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)  # delivery ids: a repeat of one is acknowledged, not answered
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        digest = hmac.new(SECRET.encode(), f"{headers['x-roomlog-timestamp']}.".encode() + body,
                          hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(headers["x-roomlog-signature"], f"sha256={digest}")
        payload = json.loads(body)
        async with self.arrived:
            self.calls.append((headers, payload, valid))
            self.arrived.notify_all()
        if self.mode == "fail" or not valid:
            return JSONResponse({"error": "down"}, status_code=500)
        if headers["x-roomlog-delivery"] not in self.answered:
            self.answered.add(headers["x-roomlog-delivery"])
            await self._answer(payload)
        return JSONResponse({"ok": True})

    async def _answer(self, payload: dict[str, Any]) -> None:
        room_id, token = payload["room"]["room_id"], payload["reply"]["token"]
        text = self.reply_text.get(payload["bot_id"], "beep")
        async with httpx.AsyncClient(base_url=self.api, headers={"Authorization": f"Bearer {token}"}) as api:
            message_id = payload["message"]["message_id"]
            assert (await api.post(f"/rooms/{room_id}/messages/{message_id}/reactions",
                                   json={"emoji": "👀"})).status_code == 200
            sent = await api.post(f"/rooms/{room_id}/messages", json={"content": text})
            assert sent.status_code == 201, sent.text

    async def wait_for(self, count: int, within: float = 15.0) -> list[tuple[dict[str, str], dict[str, Any], bool]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.calls) >= count), within)
        return self.calls[:count]


@pytest.fixture(scope="module")
def bots_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = NatsServer(tmp_path_factory.mktemp("bots-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
async def bots_settings(pg_server_url: str, bots_nats: str) -> Settings:
    url = await create_database(pg_server_url, "roomlog_bots")
    return Settings(database_url=url, nats_url=bots_nats, access_log=False, webhook_backoff=BACKOFF,
                    webhook_max_deliver=MAX_DELIVER, webhook_timeout_seconds=2.0, webhook_allow_private=True,
                    default_rate_limit=0, default_send_rate_limit=0, bot_context_messages=3)


@pytest.fixture(scope="module")
async def bots_runtime(bots_settings: Settings) -> AsyncIterator[Runtime]:
    rt = await start_runtime(bots_settings)
    await asyncio.wait_for(rt.realtime.ready.wait(), 30)
    yield rt
    await stop_runtime(rt)


@pytest.fixture(scope="module")
async def live(bots_settings: Settings, bots_runtime: Runtime) -> AsyncIterator[str]:
    """The service on a real port."""
    async for address in serving(create_app(bots_settings, runtime=bots_runtime)):
        yield address


@pytest.fixture(scope="module")
async def bot_server(live: str) -> AsyncIterator[tuple[BotServer, str]]:
    """The bot app on a real port, and its webhook URL."""
    bot = BotServer(api=f"http://{live}")
    async for address in serving(bot.app()):
        yield bot, f"http://{address}/hook"


@pytest.fixture
async def setup(bots_settings: Settings, bot_server: tuple[BotServer, str], live: str
                ) -> AsyncIterator[tuple[Tenant, httpx.AsyncClient, BotServer, str]]:
    bot, url = bot_server
    bot.calls.clear()
    bot.answered.clear()
    bot.mode, bot.reply_text = "reply", {}
    tenant = await make_tenant(bots_settings.database_url)
    async with httpx.AsyncClient(base_url=f"http://{live}") as api:
        yield tenant, api, bot, url


async def register(api: httpx.AsyncClient, tenant: Tenant, bot_id: str, delivery: dict[str, str],
                   triggers: list[str] | None = None) -> None:
    body = {"user_id": bot_id, "display_name": bot_id, "delivery": delivery, "triggers": triggers or ["mention"]}
    response = await api.post("/bots", json=body, headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text


async def room_with(api: httpx.AsyncClient, tenant: Tenant, members: list[str]) -> str:
    response = await api.post("/rooms", json={"type": "group", "members": members}, headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    return str(response.json()["room_id"])


async def say(api: httpx.AsyncClient, tenant: Tenant, room_id: str, text: str) -> dict[str, Any]:
    response = await api.post(f"/rooms/{room_id}/messages", json={"content": text}, headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    sent: dict[str, Any] = response.json()
    return sent


async def drained(runtime: Runtime) -> None:
    """Until the delivery producer has looked at every event and the sender has finished every job."""
    assert runtime.nats.client is not None
    js = runtime.nats.client.jetstream()
    for _ in range(500):
        producer = await js.consumer_info(EVENTS_STREAM, DELIVERY_PRODUCER)
        sender = await js.consumer_info(DELIVERIES_STREAM, WEBHOOK_CONSUMER)
        if producer.num_pending == producer.num_ack_pending == sender.num_pending == sender.num_ack_pending == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the delivery consumers did not drain")


async def test_a_mentioned_bot_gets_a_signed_delivery_and_its_reply_reaches_a_websocket(
    setup: tuple[Tenant, httpx.AsyncClient, BotServer, str], live: str
) -> None:
    tenant, api, bot, url = setup
    bot.reply_text = {"aurora": "on it"}
    await register(api, tenant, "aurora", {"webhook_url": url, "secret": SECRET})
    room_id = await room_with(api, tenant, ["aurora", "bob"])
    await say(api, tenant, room_id, "first")
    token = (await api.post("/tokens", headers=tenant.as_user("bob"))).json()["token"]
    async with connect(f"ws://{live}/ws?token={token}") as ws:
        await ws.send(json.dumps({"type": "sync", "rooms": {room_id: 0}}))
        sent = await say(api, tenant, room_id, "hey @Aurora, summarise please")
        [(headers, payload, valid)] = await bot.wait_for(1)  # a repeat (same delivery id) is not answered again
        replies: list[dict[str, Any]] = []
        while not replies:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "message.new" and frame["actor"] == "aurora":
                replies.append(frame)
    assert valid and headers["x-roomlog-event"] == "bot.triggered"
    assert headers["x-roomlog-delivery"] == payload["delivery_id"]
    assert (payload["bot_id"], payload["trigger"], payload["room"]["room_id"]) == ("aurora", "mention", room_id)
    assert payload["message"]["message_id"] == sent["message_id"]
    assert [m["content"] for m in payload["context"]] == ["first"]
    assert replies[0]["data"]["content"] == "on it" and replies[0]["data"]["sender_id"] == "aurora"
    messages = (await api.get(f"/rooms/{room_id}/messages", headers=tenant.as_user("bob"))).json()
    assert messages[-1]["sender_id"] == "aurora"
    assert messages[-2]["reactions"] == [{"emoji": "👀", "count": 1, "me": False}], messages


async def test_a_bot_that_is_down_gets_retries_with_one_delivery_id_and_ends_as_a_dead_letter(
    setup: tuple[Tenant, httpx.AsyncClient, BotServer, str], bots_runtime: Runtime
) -> None:
    tenant, api, bot, url = setup
    bot.mode = "fail"
    await register(api, tenant, "aurora", {"webhook_url": url, "secret": SECRET})
    room_id = await room_with(api, tenant, ["aurora"])
    await say(api, tenant, room_id, "@aurora are you there?")
    calls = await bot.wait_for(MAX_DELIVER)
    assert len({headers["x-roomlog-delivery"] for headers, _, _ in calls}) == 1
    assert all(valid and payload["reply"]["token"] for _, payload, valid in calls)  # signed, with a token each time
    await drained(bots_runtime)
    letters = (await api.get("/admin/dead-letters", headers=tenant.as_user("admin"))).json()["failed_notifications"]
    assert [(d["topic"], d["attempts"]) for d in letters] == [("bot.triggered", MAX_DELIVER)]
    assert len(bot.calls) == MAX_DELIVER


async def test_two_bots_mentioning_each_other_do_not_loop(
    setup: tuple[Tenant, httpx.AsyncClient, BotServer, str], bots_runtime: Runtime
) -> None:
    tenant, api, bot, url = setup
    bot.reply_text = {"ping": "@pong your turn", "pong": "@ping no, yours"}
    for bot_id in ("ping", "pong"):
        await register(api, tenant, bot_id, {"webhook_url": url, "secret": SECRET}, ["mention", "all_messages"])
    room_id = await room_with(api, tenant, ["ping", "pong"])
    await say(api, tenant, room_id, "@ping @pong talk to each other")
    await bot.wait_for(2)
    await drained(bots_runtime)
    deliveries = {payload["delivery_id"]: payload["bot_id"] for _, payload, _ in bot.calls}
    assert sorted(deliveries.values()) == ["ping", "pong"]  # one each for the human's message, none for replies
    messages = (await api.get(f"/rooms/{room_id}/messages", headers=tenant.as_user("alice"))).json()
    assert sorted(m["sender_id"] for m in messages) == ["alice", "ping", "pong"]


async def test_a_bot_inside_the_cluster_gets_its_delivery_as_a_nats_request(
    setup: tuple[Tenant, httpx.AsyncClient, BotServer, str], bots_runtime: Runtime
) -> None:
    tenant, api, _, _ = setup
    subject = f"bots.{uuid.uuid4().hex}"
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    nc = bots_runtime.nats.client
    assert nc is not None

    async def answer(msg: Any) -> None:
        await got.put(json.loads(msg.data))
        await msg.respond(b"ok")

    sub = await nc.subscribe(subject, cb=answer)
    try:
        await register(api, tenant, "inside", {"nats_subject": subject}, ["dm"])
        dm = await api.post("/rooms", json={"type": "dm", "members": ["inside"]}, headers=tenant.as_user("alice"))
        room_id = dm.json()["room_id"]
        await say(api, tenant, room_id, "hello bot")
        payload = await asyncio.wait_for(got.get(), 15)
    finally:
        await sub.unsubscribe()
    assert (payload["bot_id"], payload["trigger"], payload["message"]["content"]) == ("inside", "dm", "hello bot")
    reply = await api.post(f"/rooms/{room_id}/messages", json={"content": "hi human"},
                           headers={"Authorization": f"Bearer {payload['reply']['token']}"})
    assert reply.status_code == 201, reply.text
