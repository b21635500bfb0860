"""Webhook retries and dead letters through a real NATS, PostgreSQL and local HTTP receiver.

This module runs its own nats-server and database with a Runtime of fast retry settings (4 attempts,
waits of 0.2, 0.4 and 0.8 s): JetStream's consumer configuration lives in the NATS server, so the
session runtime's defaults must not share it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import nats
import pytest
from nats.js.errors import NotFoundError

from projections.dead_letters import DeadLettersProjection
from projections.replay import replay
from projections.streams import deliveries_stream
from schemas.config import Settings
from schemas.delivery import DeliveryJob
from service.app import create_app
from service.cli.embedded import NatsServer
from service.consumers.advisories import NO_RESPONSE, MaxDeliveriesListener
from service.consumers.webhook_sender import record_failure
from service.consumers.webhooks import enqueue
from service.realtime.jetstream import DELIVERIES_STREAM, WEBHOOK_CONSUMER, ensure_jetstream
from service.runtime import Runtime, start_runtime, stop_runtime
from tests.conftest import Tenant, create_database, make_tenant
from tests.service.test_webhooks import Receiver, create_webhook, expected_signature, group_room, send

BACKOFF = (0.2, 0.4, 0.8)
MAX_DELIVER = 4
PLATFORM_KEY = "platform-" + uuid.uuid4().hex

T = TypeVar("T")


@pytest.fixture(scope="module")
def fast_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server of this module's own."""
    server = NatsServer(tmp_path_factory.mktemp("dead-letters-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
async def fast_database_url(pg_server_url: str) -> str:
    """A database of this module's own (the relay of another runtime holds the session database's lock)."""
    return await create_database(pg_server_url, "roomlog_dl")


@pytest.fixture(scope="module")
def fast_settings(fast_database_url: str, fast_nats: str) -> Settings:
    return Settings(database_url=fast_database_url, nats_url=fast_nats, access_log=False,
                    webhook_backoff=BACKOFF, webhook_max_deliver=MAX_DELIVER, webhook_timeout_seconds=2.0,
                    platform_admin_key=PLATFORM_KEY, webhook_allow_private=True)


@pytest.fixture(scope="module")
async def fast_runtime(fast_settings: Settings) -> AsyncIterator[Runtime]:
    rt = await start_runtime(fast_settings)
    await asyncio.wait_for(rt.realtime.ready.wait(), 30)
    yield rt
    await stop_runtime(rt)


@pytest.fixture
async def api(fast_settings: Settings, fast_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to an app on the fast-retry runtime."""
    transport = httpx.ASGITransport(app=create_app(fast_settings, runtime=fast_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
        yield c


@pytest.fixture
async def acme(fast_database_url: str) -> Tenant:
    return await make_tenant(fast_database_url)


@pytest.fixture
async def globex(fast_database_url: str) -> Tenant:
    return await make_tenant(fast_database_url)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver that fails (HTTP 500) until told otherwise."""
    r = Receiver(mode="fail")
    await r.start()
    yield r
    await r.stop()


@dataclass(frozen=True)
class Standing:
    """A tenant with one open dead letter that the tests using it only look at."""

    tenant: Tenant
    letter: dict[str, Any]


@pytest.fixture(scope="module")
async def standing(fast_settings: Settings, fast_runtime: Runtime, fast_database_url: str) -> AsyncIterator[Standing]:
    r = Receiver(mode="fail")
    await r.start()
    tenant = await make_tenant(fast_database_url)
    transport = httpx.ASGITransport(app=create_app(fast_settings, runtime=fast_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
        _, [letter] = await dead_letter_for(c, tenant, r)
    yield Standing(tenant, letter)
    await r.stop()


async def eventually(probe: Callable[[], Awaitable[T | None]], *, within: float = 10.0) -> T:
    """The first truthy answer of `probe`, polled for up to `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = await probe()
        if answer:
            return answer
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def dead_letters(api: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await api.get("/admin/dead-letters", params=params, headers=tenant.as_user("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def failed_messages(api: httpx.AsyncClient, tenant: Tenant, count: int) -> list[dict[str, Any]]:
    """The tenant's open failed messages once there are `count` of them."""
    async def probe() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = (await dead_letters(api, tenant))["failed_messages"]
        return found if len(found) >= count else None
    return await eventually(probe)


async def dead_letter_for(api: httpx.AsyncClient, tenant: Tenant, receiver: Receiver,
                          members: tuple[str, ...] = ("bob",)) -> tuple[str, list[dict[str, Any]]]:
    """A room whose message could not be delivered to its offline `members`: (room_id, their dead letters)."""
    await create_webhook(api, tenant, receiver.url)
    room_id = await group_room(api, tenant, list(members))
    await send(api, tenant, room_id, "nobody home")
    return room_id, await failed_messages(api, tenant, len(members))


# --- retries -----------------------------------------------------------------------------------


async def test_failing_receiver_is_retried_with_growing_delays(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    await dead_letter_for(api, acme, receiver)
    calls = receiver.calls
    assert len(calls) == MAX_DELIVER
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    for gap, step in zip(gaps, BACKOFF, strict=True):
        assert gap >= step * 0.9, gaps
    assert gaps[0] < gaps[2], gaps


async def test_every_attempt_carries_the_same_delivery_id_and_a_valid_signature(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    hook = await create_webhook(api, acme, receiver.url)
    await send(api, acme, await group_room(api, acme, ["bob"]), "again and again")
    calls = await receiver.wait_for_calls(MAX_DELIVER)
    assert len({c.headers["x-roomlog-delivery"] for c in calls}) == 1
    assert all(c.headers["x-roomlog-signature"] == expected_signature(hook["secret"], c) for c in calls)


async def test_no_attempt_after_the_last(api: httpx.AsyncClient, acme: Tenant, receiver: Receiver) -> None:
    await dead_letter_for(api, acme, receiver)
    await asyncio.sleep(BACKOFF[-1] * 1.5)
    assert len(receiver.calls) == MAX_DELIVER


async def test_receiver_that_recovers_before_the_last_attempt_leaves_no_dead_letter(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    await create_webhook(api, acme, receiver.url)
    await send(api, acme, await group_room(api, acme, ["bob"]), "eventually")
    await receiver.wait_for_calls(2)
    receiver.mode = "ok"
    await receiver.wait_for_calls(3)
    await asyncio.sleep(BACKOFF[-1] * 1.5)
    assert len(receiver.calls) == 3
    assert (await dead_letters(api, acme))["failed_messages"] == []


async def test_deleted_webhook_gets_no_more_attempts_and_no_dead_letter(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    hook = await create_webhook(api, acme, receiver.url)
    await send(api, acme, await group_room(api, acme, ["bob"]), "unwanted")
    await receiver.wait_for_calls(1)
    deleted = await api.delete(f"/webhooks/{hook['webhook_id']}", headers=acme.as_user("admin"))
    assert deleted.status_code == 200
    made = len(receiver.calls)  # 1, or 2 on a slow machine where the delete came after the second attempt
    await asyncio.sleep(sum(BACKOFF))
    assert len(receiver.calls) == made < MAX_DELIVER
    assert (await dead_letters(api, acme))["failed_messages"] == []


# --- dead letters --------------------------------------------------------------------------------


async def test_exhausted_delivery_is_a_dead_letter_with_attempts_and_last_error(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    room_id, [letter] = await dead_letter_for(api, acme, receiver)
    message_id = receiver.calls[0].json()["message"]["message_id"]
    assert {k: letter[k] for k in ("message_id", "user_id", "room_id", "attempts", "error")} == {
        "message_id": message_id, "user_id": "bob", "room_id": room_id, "attempts": MAX_DELIVER,
        "error": "HTTP 500: receiver down",
    }
    last_attempt_at = datetime.fromisoformat(letter["last_attempt_at"])
    assert abs((datetime.now(UTC) - last_attempt_at).total_seconds()) < 30
    assert letter["id"].startswith("dl_")
    assert (await dead_letters(api, acme))["failed_notifications"] == []


async def test_receiver_closing_the_connection_is_the_recorded_error(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    receiver.mode = "close"
    _, [letter] = await dead_letter_for(api, acme, receiver)
    assert letter["error"].startswith("ServerDisconnectedError"), letter["error"]


async def test_retry_delivers_with_the_same_delivery_id_and_clears_the_dead_letter(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    _, [letter] = await dead_letter_for(api, acme, receiver)
    first_delivery = receiver.calls[0].headers["x-roomlog-delivery"]
    receiver.mode = "ok"
    retried = await api.post(f"/admin/dead-letters/{letter['id']}/retry", headers=acme.as_user("admin"))
    assert retried.status_code == 200, retried.text
    call = (await receiver.wait_for_calls(MAX_DELIVER + 1))[MAX_DELIVER]
    assert call.headers["x-roomlog-delivery"] == first_delivery
    assert call.json() == receiver.calls[0].json()
    assert (await dead_letters(api, acme))["failed_messages"] == []


async def test_failed_retry_reopens_the_dead_letter_and_a_second_retry_delivers(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    _, [letter] = await dead_letter_for(api, acme, receiver)
    admin = acme.as_user("admin")
    assert (await api.post(f"/admin/dead-letters/{letter['id']}/retry", headers=admin)).status_code == 200
    await receiver.wait_for_calls(2 * MAX_DELIVER)
    [reopened] = await failed_messages(api, acme, 1)
    assert reopened["id"] == letter["id"]
    assert reopened["attempts"] == MAX_DELIVER and reopened["last_attempt_at"] > letter["last_attempt_at"]
    receiver.mode = "ok"
    # A new message id per retry: JetStream would drop a re-publish of the first retry's as a duplicate.
    assert (await api.post(f"/admin/dead-letters/{letter['id']}/retry", headers=admin)).status_code == 200
    calls = await receiver.wait_for_calls(2 * MAX_DELIVER + 1)
    assert len({c.headers["x-roomlog-delivery"] for c in calls}) == 1


async def test_discard_removes_the_dead_letter_for_good(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    _, [letter] = await dead_letter_for(api, acme, receiver)
    admin = acme.as_user("admin")
    discarded = await api.delete(f"/admin/dead-letters/{letter['id']}", headers=admin)
    assert discarded.status_code == 200 and discarded.json() == {"success": True}
    assert (await dead_letters(api, acme))["failed_messages"] == []
    for method, suffix in (("DELETE", ""), ("POST", "/retry")):
        response = await api.request(method, f"/admin/dead-letters/{letter['id']}{suffix}", headers=admin)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "DEAD_LETTER_NOT_FOUND"
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == MAX_DELIVER


async def test_unknown_dead_letter_is_not_found(api: httpx.AsyncClient, acme: Tenant) -> None:
    for response in (await api.post("/admin/dead-letters/dl_nope/retry", headers=acme.as_user("admin")),
                     await api.delete("/admin/dead-letters/dl_nope", headers=acme.as_user("admin"))):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "DEAD_LETTER_NOT_FOUND"


async def test_limit_bounds_each_list(api: httpx.AsyncClient, acme: Tenant, receiver: Receiver) -> None:
    await dead_letter_for(api, acme, receiver, members=("bob", "carol"))
    assert len((await dead_letters(api, acme, limit=1))["failed_messages"]) == 1
    assert len((await dead_letters(api, acme))["failed_messages"]) == 2
    for bad in (0, 1001, "many"):
        response = await api.get("/admin/dead-letters", params={"limit": bad}, headers=acme.as_user("admin"))
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "limit"


# --- who may see them ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/admin/dead-letters"), ("POST", "/admin/dead-letters/{id}/retry"), ("DELETE", "/admin/dead-letters/{id}"),
])
async def test_non_admins_can_neither_read_nor_handle_dead_letters(
    api: httpx.AsyncClient, standing: Standing, method: str, path: str
) -> None:
    response = await api.request(method, path.format(id=standing.letter["id"]),
                                 headers=standing.tenant.as_user("bob"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "NOT_TENANT_ADMIN"
    assert (await dead_letters(api, standing.tenant))["failed_messages"] == [standing.letter]


async def test_another_tenants_admin_sees_no_dead_letter(
    api: httpx.AsyncClient, standing: Standing, globex: Tenant
) -> None:
    assert await dead_letters(api, globex) == {"failed_messages": [], "failed_notifications": []}


async def test_naming_another_tenant_is_forbidden_to_a_tenant_admin(
    api: httpx.AsyncClient, standing: Standing, globex: Tenant
) -> None:
    named = await api.get("/admin/dead-letters", params={"tenant_id": standing.tenant.tenant_id},
                          headers=globex.as_user("admin"))
    assert named.status_code == 403
    assert named.json()["error"] == {"code": "NOT_TENANT_ADMIN", "field": "tenant_id",
                                     "message": "you may only see your own tenant's dead letters"}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_another_tenants_dead_letter_is_not_found(
    api: httpx.AsyncClient, standing: Standing, globex: Tenant, method: str
) -> None:
    path = f"/admin/dead-letters/{standing.letter['id']}" + ("/retry" if method == "POST" else "")
    response = await api.request(method, path, headers=globex.as_user("admin"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "DEAD_LETTER_NOT_FOUND"
    assert (await dead_letters(api, standing.tenant))["failed_messages"] == [standing.letter]


async def test_tenant_admin_may_name_their_own_tenant(api: httpx.AsyncClient, standing: Standing) -> None:
    named = await dead_letters(api, standing.tenant, tenant_id=standing.tenant.tenant_id)
    assert named["failed_messages"] == [standing.letter]


async def test_platform_admin_reads_any_tenants_dead_letters(api: httpx.AsyncClient, standing: Standing) -> None:
    listed = await api.get("/admin/dead-letters", params={"tenant_id": standing.tenant.tenant_id},
                           headers={"X-API-Key": PLATFORM_KEY})
    assert listed.status_code == 200
    assert listed.json() == {"failed_messages": [standing.letter], "failed_notifications": []}


async def test_platform_admin_retries_a_tenants_dead_letter(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver
) -> None:
    _, [letter] = await dead_letter_for(api, acme, receiver)
    receiver.mode = "ok"
    retried = await api.post(f"/admin/dead-letters/{letter['id']}/retry", params={"tenant_id": acme.tenant_id},
                             headers={"X-API-Key": PLATFORM_KEY})
    assert retried.status_code == 200, retried.text
    await receiver.wait_for_calls(MAX_DELIVER + 1)
    assert (await dead_letters(api, acme))["failed_messages"] == []


@pytest.mark.parametrize(("params", "status", "field"), [({}, 400, "tenant_id"),
                                                         ({"tenant_id": "tn_nobody"}, 404, "tenant_id")])
async def test_platform_admin_must_name_an_existing_tenant(
    api: httpx.AsyncClient, params: dict[str, str], status: int, field: str
) -> None:
    response = await api.get("/admin/dead-letters", params=params, headers={"X-API-Key": PLATFORM_KEY})
    assert response.status_code == status
    assert response.json()["error"]["field"] == field


# --- the read model -------------------------------------------------------------------------------


async def test_replay_rebuilds_dead_letters_as_they_were(
    api: httpx.AsyncClient, acme: Tenant, receiver: Receiver, fast_runtime: Runtime
) -> None:
    _, letters = await dead_letter_for(api, acme, receiver, members=("bob", "carol", "dave"))
    admin = acme.as_user("admin")
    await api.delete(f"/admin/dead-letters/{letters[0]['id']}", headers=admin)
    await api.post(f"/admin/dead-letters/{letters[1]['id']}/retry", headers=admin)
    before = await fast_runtime.pool.fetch("SELECT * FROM dead_letters ORDER BY tenant_id, delivery_id")
    report = await replay(fast_runtime.pool, [DeadLettersProjection()], verify=True)
    assert report.differences == {"dead_letters": 0}
    after = await fast_runtime.pool.fetch("SELECT * FROM dead_letters ORDER BY tenant_id, delivery_id")
    assert [dict(r) for r in after] == [dict(r) for r in before]
    assert {r["status"] for r in after if r["tenant_id"] == acme.tenant_id} >= {"open", "retried", "discarded"}


async def test_recording_one_failure_twice_appends_one_event(fast_runtime: Runtime, acme: Tenant) -> None:
    job = DeliveryJob(delivery_id="1:wh_x:bob", tenant_id=acme.tenant_id, webhook_id="wh_x", kind="message",
                      event="message.offline", user_id="bob", created_at=datetime.now(UTC), payload={"a": 1},
                      room_id="room_x", message_id="msg_x")
    for _ in range(2):
        await record_failure(fast_runtime.appender, job, generation=job.delivery_id, attempts=4, error="boom",
                             at=datetime.now(UTC))
    count = await fast_runtime.pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1",
                                             deliveries_stream(acme.tenant_id))
    assert count == 1


# --- max-deliveries advisories ------------------------------------------------------------------------


async def test_job_nobody_answered_becomes_a_dead_letter_through_the_advisory(
    tmp_path: Path, api: httpx.AsyncClient, acme: Tenant, fast_runtime: Runtime
) -> None:
    # A NATS of its own with no sender running: this test plays a worker that takes the job and dies each time.
    server = NatsServer(tmp_path / "nats")
    server.start()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await ensure_jetstream(js, Settings(webhook_backoff=BACKOFF, webhook_max_deliver=MAX_DELIVER))
        listener = MaxDeliveriesListener(nc, js, fast_runtime.appender)
        await listener.start()
        job = DeliveryJob(delivery_id="7:wh_gone:erin", tenant_id=acme.tenant_id, webhook_id="wh_gone",
                          kind="message", event="message.offline", user_id="erin", created_at=datetime.now(UTC),
                          payload={"hello": "erin"}, room_id="room_q", message_id="msg_q")
        await enqueue(js, job)
        sub = await js.pull_subscribe_bind(durable=WEBHOOK_CONSUMER, stream=DELIVERIES_STREAM)
        for attempt in range(1, MAX_DELIVER + 1):
            [msg] = await sub.fetch(1, timeout=5)
            assert msg.metadata.num_delivered == attempt  # taken, never acked
        # JetStream gives up on the job when it would deliver it again: to a worker asking for more.
        with pytest.raises(TimeoutError):
            await sub.fetch(1, timeout=2 * BACKOFF[-1])
        [letter] = await failed_messages(api, acme, 1)
        assert {k: letter[k] for k in ("message_id", "user_id", "room_id", "attempts", "error")} == {
            "message_id": "msg_q", "user_id": "erin", "room_id": "room_q", "attempts": MAX_DELIVER,
            "error": NO_RESPONSE,
        }
        with pytest.raises(NotFoundError):  # and the job left the work queue
            await js.get_msg(DELIVERIES_STREAM, msg.metadata.sequence.stream)
        stored = await fast_runtime.pool.fetchval("SELECT job FROM dead_letters WHERE id = $1", letter["id"])
        assert msgspec.json.decode(stored, type=DeliveryJob) == job
    finally:
        await nc.close()
        server.stop()
