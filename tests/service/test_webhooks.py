"""Tenant webhooks: the configuration API, and message.offline calls to a real local HTTP receiver.

The receiver is a small asyncio HTTP server on a free port that records every request and can be
switched between answering 200, answering 500 and closing the connection without an answer. The
online/offline tests serve the app with uvicorn on a real port, because a WebSocket needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect

from schemas.config import Settings
from schemas.events import EventMetadata, SlaClockStarted
from service.app import create_app
from service.consumers.egress import ForbiddenAddress, IPAddress, OutboundHttp, Resolver, is_public
from service.consumers.sla_timer import BreachTimer
from service.runtime import Runtime
from tests.conftest import Tenant, serving

Mode = Literal["ok", "fail", "close"]


@dataclass(frozen=True)
class Call:
    """One request the receiver got: when (monotonic seconds), its headers (lower-case names) and body."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server recording webhook calls; `mode` decides how it answers the next one."""

    mode: Mode = "ok"
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for_calls(self, count: int, *, within: float = 10.0,
                             where: Callable[[Call], bool] = lambda c: True) -> list[Call]:
        """The first `count` recorded calls matching `where`, waiting up to `within` seconds for them."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.matching(where)) >= count), within)
        return self.matching(where)[:count]

    def matching(self, where: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if where(c)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            mode = self.mode
            async with self._arrived:
                self.calls.append(Call(time.monotonic(), head[0].split(" ")[1], headers, body))
                self._arrived.notify_all()
            if mode == "close":
                return
            status, text = (200, b"thanks") if mode == "ok" else (500, b"receiver down")
            head_out = b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(text))
            writer.write(head_out + text)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def expected_signature(secret: str, call: Call) -> str:
    """What X-Roomlog-Signature must be, computed the way a receiver would."""
    signed = call.headers["x-roomlog-timestamp"].encode() + b"." + call.body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def for_user(user_id: str) -> Callable[[Call], bool]:
    """Calls about `user_id`."""
    return lambda call: call.json()["user_id"] == user_id


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver answering 200 until told otherwise."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
async def ready_runtime(runtime: Runtime) -> Runtime:
    """The session runtime once its consumers run (NATS may come up after the service)."""
    await asyncio.wait_for(runtime.realtime.ready.wait(), 30)
    return runtime


@pytest.fixture(scope="module")
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The session app served by uvicorn on a real port (in this process, on the session runtime)."""
    async for url in serving(app):
        yield url


async def create_webhook(client: httpx.AsyncClient, tenant: Tenant, url: str,
                         events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    response = await client.post("/webhooks", json={"url": url, "events": events or ["message.offline"], **extra},
                                 headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def group_room(client: httpx.AsyncClient, tenant: Tenant, members: list[str]) -> str:
    response = await client.post("/rooms", json={"type": "group", "members": members},
                                 headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    room_id: str = response.json()["room_id"]
    return room_id


async def send(client: httpx.AsyncClient, tenant: Tenant, room_id: str, content: str,
               mentions: list[str] | None = None) -> dict[str, Any]:
    response = await client.post(f"/rooms/{room_id}/messages", json={"content": content, "mentions": mentions or []},
                                 headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    sent: dict[str, Any] = response.json()
    return sent


@contextlib.asynccontextmanager
async def online(client: httpx.AsyncClient, tenant: Tenant, user_id: str, live_url: str
                 ) -> AsyncIterator[ClientConnection]:
    """`user_id` with a live WebSocket to the real server (connected once a ping was answered)."""
    token = (await client.post("/tokens", headers=tenant.as_user(user_id))).json()["token"]
    async with connect(f"ws://{live_url}/ws?token={token}") as ws:
        await ws.send(json.dumps({"type": "ping"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "pong":
            pass
        yield ws


# --- configuration ---------------------------------------------------------------------------


async def test_create_webhook_shows_a_generated_secret_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_webhook(client, tenant, "https://hooks.example.com/roomlog")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["url"] == "https://hooks.example.com/roomlog"
    assert created["events"] == ["message.offline"]
    listed = (await client.get("/webhooks", headers=tenant.as_user("admin"))).json()
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]


async def test_create_webhook_keeps_the_secret_it_is_given(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await create_webhook(client, tenant, "http://127.0.0.1:9/h", ["notification", "message.offline"],
                                   secret="s" * 32)
    assert created["secret"] == "s" * 32
    assert created["events"] == ["message.offline", "notification"]


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/x", "events": ["message.offline"]}, "url"),
    ({"url": "http://", "events": ["message.offline"]}, "url"),
    ({"url": "https://example.com:99999/x", "events": ["message.offline"]}, "url"),
    ({"url": "https://example.com/x", "events": []}, "events"),
    ({"url": "https://example.com/x", "events": ["message.deleted"]}, "events[0]"),
    ({"url": "https://example.com/x", "events": ["notification"], "secret": "short"}, "secret"),
], ids=["scheme", "no-host", "bad-port", "no-events", "unknown-event", "short-secret"])
async def test_invalid_webhook_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/webhooks", json=body, headers=tenant.as_user("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(("method", "path"), [("POST", "/webhooks"), ("GET", "/webhooks"),
                                              ("DELETE", "/webhooks/wh_x")])
async def test_only_tenant_admins_manage_webhooks(
    client: httpx.AsyncClient, tenant: Tenant, method: str, path: str
) -> None:
    body = {"url": "https://example.com/x", "events": ["message.offline"]} if method == "POST" else None
    response = await client.request(method, path, json=body, headers=tenant.as_user("alice"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "NOT_TENANT_ADMIN"


async def test_deleted_webhook_leaves_the_list_and_cannot_be_deleted_again(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await create_webhook(client, tenant, "https://example.com/gone")
    admin = tenant.as_user("admin")
    assert (await client.delete(f"/webhooks/{created['webhook_id']}", headers=admin)).json() == {"success": True}
    assert (await client.get("/webhooks", headers=admin)).json() == []
    again = await client.delete(f"/webhooks/{created['webhook_id']}", headers=admin)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"


async def test_another_tenants_webhook_is_not_found_and_not_listed(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create_webhook(client, tenant, "https://example.com/mine")
    intruder = other_tenant.as_user("admin")
    assert (await client.delete(f"/webhooks/{created['webhook_id']}", headers=intruder)).status_code == 404
    assert (await client.get("/webhooks", headers=intruder)).json() == []
    assert len((await client.get("/webhooks", headers=tenant.as_user("admin"))).json()) == 1


# --- message.offline -------------------------------------------------------------------------


async def test_offline_member_gets_a_signed_message_offline_call(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    hook = await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob"])
    sent = await send(client, tenant, room_id, "are you there?")
    [call] = await receiver.wait_for_calls(1)
    assert call.headers["x-roomlog-signature"] == expected_signature(hook["secret"], call)
    assert abs(int(call.headers["x-roomlog-timestamp"]) - time.time()) < 60
    assert call.headers["x-roomlog-event"] == "message.offline"
    body = call.json()
    assert call.headers["x-roomlog-delivery"] == body["delivery_id"]
    assert (body["event"], body["user_id"], body["room_id"]) == ("message.offline", "bob", room_id)
    assert body["message"]["message_id"] == sent["message_id"]
    assert (body["message"]["seq"], body["message"]["content"]) == (sent["seq"], "are you there?")


async def test_a_call_carries_the_request_id_of_the_send_as_its_correlation_id_and_is_counted(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob"])
    delivered = ready_runtime.metrics.webhook_outcome["delivered"]
    before = delivered._value.get()
    response = await client.post(f"/rooms/{room_id}/messages", json={"content": "traced"},
                                 headers={**tenant.as_user("alice"), "X-Request-Id": "trace-webhook-1"})
    assert response.status_code == 201, response.text
    [call] = await receiver.wait_for_calls(1)
    assert call.headers["x-roomlog-correlation-id"] == "trace-webhook-1"
    async with asyncio.timeout(5):  # counted once the sender has acked the job, just after the call
        while delivered._value.get() == before:  # noqa: ASYNC110 - a counter has no event to await
            await asyncio.sleep(0.01)


async def test_a_member_with_a_non_ascii_id_gets_a_call_with_an_ascii_delivery_header(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url)
    await send(client, tenant, await group_room(client, tenant, ["בוב:1"]), "shalom")
    [call] = await receiver.wait_for_calls(1)
    body = call.json()
    assert body["user_id"] == "בוב:1"
    assert call.headers["x-roomlog-delivery"] == body["delivery_id"]
    assert body["delivery_id"].endswith(":%D7%91%D7%95%D7%91%3A1")


async def test_signature_does_not_verify_with_another_secret(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url)
    await send(client, tenant, await group_room(client, tenant, ["bob"]), "hello")
    [call] = await receiver.wait_for_calls(1)
    assert call.headers["x-roomlog-signature"] != expected_signature("whsec_not-the-secret", call)


async def test_member_with_a_live_websocket_gets_no_message_offline(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime, live_url: str
) -> None:
    await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob", "carol"])
    async with online(client, tenant, "bob", live_url):
        await send(client, tenant, room_id, "first")
        await send(client, tenant, room_id, "second")
        await receiver.wait_for_calls(2, where=for_user("carol"))
        await asyncio.sleep(0.5)  # any call for bob would be queued together with carol's
    assert receiver.matching(for_user("bob")) == []
    assert receiver.matching(for_user("alice")) == []  # nor the sender


async def test_member_who_disconnected_gets_message_offline_again(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime, live_url: str
) -> None:
    await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob"])
    async with online(client, tenant, "bob", live_url):
        assert await ready_runtime.realtime.presence.connected_users(tenant.tenant_id, ["bob"]) == {"bob"}
    for _ in range(200):  # until the gateway noticed the close
        if not await ready_runtime.realtime.presence.connected_users(tenant.tenant_id, ["bob"]):
            break
        await asyncio.sleep(0.02)
    await send(client, tenant, room_id, "back?")
    [call] = await receiver.wait_for_calls(1, where=for_user("bob"))
    assert call.json()["message"]["content"] == "back?"


async def test_webhook_without_message_offline_gets_no_such_calls(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    other = Receiver()
    await other.start()
    try:
        await create_webhook(client, tenant, other.url, ["notification"])
        await create_webhook(client, tenant, receiver.url)
        await send(client, tenant, await group_room(client, tenant, ["bob"]), "hi")
        await receiver.wait_for_calls(1)
        await asyncio.sleep(0.3)
        assert other.calls == []
    finally:
        await other.stop()


async def test_each_offline_member_gets_one_call_per_message(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob", "carol"])
    for n in range(3):
        await send(client, tenant, room_id, f"m{n}")
    calls = await receiver.wait_for_calls(6)
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == 6
    assert sorted((c.json()["user_id"], c.json()["message"]["content"]) for c in calls) == sorted(
        (user, f"m{n}") for user in ("bob", "carol") for n in range(3)
    )
    assert len({c.headers["x-roomlog-delivery"] for c in calls}) == 6


async def test_a_muted_member_gets_message_offline_only_for_messages_that_mention_them(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url)
    room_id = await group_room(client, tenant, ["bob", "carol", "dave"])
    for user in ("bob", "dave"):
        muted = await client.post(f"/rooms/{room_id}/mute", headers=tenant.as_user(user))
        assert muted.status_code == 200, muted.text
    await send(client, tenant, room_id, "plain")
    await send(client, tenant, room_id, "bob?", mentions=["bob"])
    await send(client, tenant, room_id, "everyone", mentions=["@room"])
    calls = await receiver.wait_for_calls(6)
    await asyncio.sleep(0.3)  # any further call would be queued together with these
    assert sorted((c.json()["user_id"], c.json()["message"]["content"]) for c in receiver.calls) == [
        ("bob", "bob?"), ("bob", "everyone"), ("carol", "bob?"), ("carol", "everyone"), ("carol", "plain"),
        ("dave", "everyone"),
    ]
    assert len(calls) == 6


# where webhooks may point


@pytest.fixture(scope="module")
def public_only_app(settings: Settings, runtime: Runtime) -> Starlette:
    """The session app, but with the production default: webhooks reach public addresses only."""
    strict = msgspec.structs.replace(settings, webhook_allow_private=False)
    return create_app(strict, runtime=dataclasses.replace(runtime, settings=strict))


@pytest.fixture
async def public_only(public_only_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=public_only_app),
                                 base_url="http://roomlog.test") as c:
        yield c


@pytest.mark.parametrize("url", [
    "http://0/", "http://127.0.0.1:1/", "http://[::1]:1/", "http://localhost:8080/h", "http://0177.0.0.1/",
    "http://10.0.0.5/h", "http://192.168.1.1/h", "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/h", "http://[::ffff:127.0.0.1]/h", "http://224.0.0.1/h", "http://240.0.0.1/h",
    "http://0.0.0.0/h", "http://100.64.0.1/h",
])
async def test_webhook_to_a_non_public_address_is_refused(public_only: httpx.AsyncClient, tenant: Tenant,
                                                          url: str) -> None:
    response = await public_only.post("/webhooks", json={"url": url, "events": ["notification"]},
                                      headers=tenant.as_user("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == {"code": "VALIDATION_ERROR", "field": "url",
                                        "message": response.json()["error"]["message"]}


@pytest.mark.parametrize("url", ["http://exa\x00mple.com/h", "http://example.com/\x7fh", "http://exa\x1bmple.com/",
                                 "https://user:pw@example.com/h", "https://user@example.com/h"])
async def test_webhook_url_with_control_characters_or_userinfo_is_refused(client: httpx.AsyncClient,
                                                                         tenant: Tenant, url: str) -> None:
    response = await client.post("/webhooks", json={"url": url, "events": ["notification"]},
                                 headers=tenant.as_user("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "url"


async def test_webhook_to_a_public_address_is_accepted_by_default(public_only: httpx.AsyncClient,
                                                                  tenant: Tenant) -> None:
    response = await public_only.post("/webhooks", json={"url": "https://93.184.215.14/h", "events": ["notification"]},
                                      headers=tenant.as_user("admin"))
    assert response.status_code == 201, response.text


async def test_a_call_to_a_name_that_now_resolves_to_loopback_is_refused(receiver: Receiver) -> None:
    # The registration-time check passed long ago; what counts is where the call would connect now.
    http = OutboundHttp(Resolver())
    try:
        with pytest.raises(ForbiddenAddress, match="not a public address"):
            await http.post(f"http://localhost:{receiver.port}/hook", b"{}", {})
        with pytest.raises(ForbiddenAddress, match="not a public address"):
            await http.post(receiver.url, b"{}", {})
        with pytest.raises(ForbiddenAddress, match="not a public address"):
            await http.post(f"http://[::1]:{receiver.port}/hook", b"{}", {})
    finally:
        await http.close()
    assert receiver.calls == []


class _NameFor(Resolver):
    """Resolves one made-up name to loopback, as a DNS answer would."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        if host == self.name:
            return [ipaddress.ip_address("127.0.0.1")]
        return await super().resolve(host, port)


async def test_a_call_connects_to_the_checked_address_with_the_urls_host(receiver: Receiver) -> None:
    resolver = _NameFor("hooks.example.test")
    allowed = OutboundHttp(resolver, public_only=False)
    refused = OutboundHttp(resolver)
    try:
        answer = await allowed.post(f"http://hooks.example.test:{receiver.port}/hook", b'{"a": 1}',
                                    {"X-Roomlog-Event": "test"})
        with pytest.raises(ForbiddenAddress, match=r"127\.0\.0\.1"):
            await refused.post(f"http://hooks.example.test:{receiver.port}/hook", b"{}", {})
    finally:
        await allowed.close()
        await refused.close()
    assert answer.ok and answer.body == b"thanks"
    [call] = receiver.calls
    assert call.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert call.headers["x-roomlog-event"] == "test" and call.body == b'{"a": 1}'


def test_public_addresses_are_only_global_unicast_ones() -> None:
    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c"))
    for text in ["127.0.0.1", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.1.1",
                 "fe80::1", "fc00::1", "224.0.0.1", "ff02::1", "240.0.0.1", "255.255.255.255", "::ffff:10.0.0.1"]:
        assert not is_public(ipaddress.ip_address(text)), text


async def test_support_sessions_call_their_webhooks_signed_without_internal_notes(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    hook = await create_webhook(client, tenant, receiver.url,
                                ["support.session_started", "support.escalation", "support.session_ended"])
    admin = tenant.as_user("admin")
    user = {"user_id": "cust", "display_name": "Cust", "role": "customer"}
    assert (await client.post("/users", json=user, headers=admin)).status_code == 201
    assert (await client.post("/support/teams", json={"team_id": "billing", "name": "B"}, headers=admin)).status_code \
        == 201
    started = await client.post("/support/sessions", json={"priority": "low"}, headers=tenant.as_user("cust"))
    sid = started.json()["session_id"]
    for path, body in [("transfer", {"target_type": "team", "target_id": "billing", "notes": "secret-note"}),
                       ("escalate", {"level": "tier2", "reason": "angry"}), ("end", {"resolution": "resolved"})]:
        assert (await client.post(f"/support/sessions/{sid}/{path}", json=body, headers=admin)).status_code == 200
    # Deliveries run concurrently: they may arrive in any order, each naming the session's seq.
    calls = sorted(await receiver.wait_for_calls(3), key=lambda c: c.json()["seq"])
    assert [c.headers["x-roomlog-event"] for c in calls] == [
        "support.session_started", "support.escalation", "support.session_ended"]
    assert all(c.headers["x-roomlog-signature"] == expected_signature(hook["secret"], c) for c in calls)
    bodies = [c.json() for c in calls]
    assert not any(b"secret-note" in c.body for c in calls)
    assert {b["session_id"] for b in bodies} == {sid}
    assert (bodies[0]["customer_id"], bodies[1]["level"], bodies[1]["priority"], bodies[2]["status"]) == (
        "cust", "tier2", "high", "resolved")


async def test_tickets_call_their_webhooks_signed_without_internal_notes(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    hook = await create_webhook(client, tenant, receiver.url,
                                ["support.ticket_created", "support.ticket_updated", "support.escalation"])
    admin = tenant.as_user("admin")
    user = {"user_id": "cust", "display_name": "Cust", "role": "customer"}
    assert (await client.post("/users", json=user, headers=admin)).status_code == 201
    filed = await client.post("/support/tickets", json={"subject": "Refund", "description": "d"},
                              headers=tenant.as_user("cust"))
    tid = filed.json()["id"]
    assert (await client.post(f"/support/tickets/{tid}/notes", json={"content": "secret-note"},
                              headers=admin)).status_code == 201
    assert (await client.put(f"/support/tickets/{tid}", json={"assigned_to": "admin"}, headers=admin)).status_code \
        == 200
    assert (await client.post(f"/support/tickets/{tid}/escalate", json={"escalation_type": "tier_2",
                                                                        "notes": "secret-note"},
                              headers=admin)).status_code == 200
    calls = sorted(await receiver.wait_for_calls(3), key=lambda c: c.json()["seq"])
    assert [c.headers["x-roomlog-event"] for c in calls] == [
        "support.ticket_created", "support.ticket_updated", "support.escalation"]
    assert all(c.headers["x-roomlog-signature"] == expected_signature(hook["secret"], c) for c in calls)
    assert not any(b"secret-note" in c.body for c in calls)
    bodies = [c.json() for c in calls]
    assert {b["ticket_id"] for b in bodies} == {tid}
    assert (bodies[0]["number"], bodies[1]["status"], bodies[1]["assigned_to"], bodies[2]["escalation_type"]) == (
        filed.json()["number"], "open", "admin", "tier_2")


async def test_a_recorded_sla_breach_calls_the_support_sla_breach_webhook(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    hook = await create_webhook(client, tenant, receiver.url, ["support.sla_breach"])
    stream = f"sla-clock:{tenant.tenant_id}:t1"
    due = datetime.now(UTC) + timedelta(milliseconds=300)
    await ready_runtime.appender.append(
        stream, [SlaClockStarted(clock_id="resolution:1", metric="resolution", due_at=due)],
        tenant_id=tenant.tenant_id, metadata=EventMetadata(tenant_id=tenant.tenant_id), create_stream=True)
    [call] = await receiver.wait_for_calls(1)  # the runtime's breach timer recorded it at the due time
    assert call.headers["x-roomlog-event"] == "support.sla_breach"
    assert call.headers["x-roomlog-signature"] == expected_signature(hook["secret"], call)
    body = call.json()
    assert (body["subject_id"], body["clock_id"], body["metric"], body["seq"]) == (stream, "resolution:1",
                                                                                   "resolution", 2)
    assert datetime.fromisoformat(body["breached_at"].replace("Z", "+00:00")) == due


async def test_a_breach_of_a_tickets_clock_calls_the_support_sla_breach_webhook_naming_the_ticket(
    client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver, ready_runtime: Runtime
) -> None:
    await create_webhook(client, tenant, receiver.url, ["support.sla_breach"])
    admin = tenant.as_user("admin")
    policy = {"name": "fast", "targets": {"first_response_minutes": 1, "resolution_minutes": 60}}
    assert (await client.post("/support/sla/policies", json=policy, headers=admin)).status_code == 201
    user = {"user_id": "cust", "display_name": "Cust", "role": "customer"}
    assert (await client.post("/users", json=user, headers=admin)).status_code == 201
    filed = (await client.post("/support/tickets", json={"subject": "Late", "description": "d"},
                               headers=tenant.as_user("cust"))).json()
    due = datetime.fromisoformat(filed["sla"]["response_due"].replace("Z", "+00:00"))
    timer = BreachTimer(ready_runtime.pool, ready_runtime.appender, "unused", now=lambda: due)
    assert await timer.record(filed["id"], "first_response:1") == 2  # at risk and breached, on a fake clock
    [call] = await receiver.wait_for_calls(1)
    body = call.json()
    assert (body["subject_id"], body["clock_id"], body["metric"]) == (filed["id"], "first_response:1",
                                                                      "first_response")
    assert datetime.fromisoformat(body["breached_at"].replace("Z", "+00:00")) == due
