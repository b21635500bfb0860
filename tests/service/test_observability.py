"""Metrics, liveness and readiness, and request ids, against the session's real PostgreSQL and NATS."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import msgspec
import pytest
import structlog
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from schemas.config import Settings
from service.app import create_app
from service.cli.embedded import free_port
from service.observability.metrics import Metrics
from service.ratelimit.limiter import RateLimiter
from service.runtime import Runtime, start_runtime, stop_runtime
from tests.conftest import REPO, Tenant

REQUESTS = "roomlog_http_request_duration_seconds"
MESSAGES_ROUTE = "/rooms/{room_id}/messages"
GENERATED = r"[0-9a-f]{16}-[0-9a-f]+"  # the process's random prefix and a counter


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics body, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def app_client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roomlog.test")


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sample's value, 0 when absent."""
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def new_room(client: httpx.AsyncClient, tenant: Tenant) -> str:
    response = await client.post("/rooms", json={"type": "group", "members": ["bob"]}, headers=tenant.as_user("alice"))
    assert response.status_code == 201, response.text
    room_id: str = response.json()["room_id"]
    return room_id


async def test_metrics_count_requests_by_route_template_never_by_id(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room_id = await new_room(client, tenant)
    before = await scrape(client)
    for i in range(3):
        response = await client.post(f"/rooms/{room_id}/messages", json={"content": f"m{i}"},
                                     headers=tenant.as_user("alice"))
        assert response.status_code == 201
    assert (await client.get(f"/no/such/{room_id}")).status_code == 404
    after = await scrape(client)
    sent = {"route": MESSAGES_ROUTE, "method": "POST", "status": "201"}
    assert value(after, f"{REQUESTS}_count", **sent) - value(before, f"{REQUESTS}_count", **sent) == 3
    assert value(after, f"{REQUESTS}_bucket", **sent, le="+Inf") == value(after, f"{REQUESTS}_count", **sent)
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, f"{REQUESTS}_count", **unmatched) > value(before, f"{REQUESTS}_count", **unmatched)
    assert value(after, "roomlog_appends_total") - value(before, "roomlog_appends_total") >= 3
    assert value(after, "roomlog_append_batch_size_count") > value(before, "roomlog_append_batch_size_count")
    for _, labels in after:
        assert all(room_id not in v for _, v in labels), labels


async def test_sampled_gauges_report_lags_consumers_dead_letters_and_the_pool(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.sampler is not None
    await runtime.sampler.sample()
    found = await scrape(client)
    names = {name for name, _ in found}
    for name in ("roomlog_relay_lag_events", "roomlog_relay_lag_seconds", "roomlog_dead_letters_open",
                 "roomlog_db_pool_connections_in_use", "roomlog_db_pool_waiting_acquires"):
        assert name in names
    assert value(found, "roomlog_catch_up_lag_events", projection="search") >= 0
    assert ("roomlog_catch_up_lag_events", frozenset({("projection", "search")})) in found
    for consumer in ("offline-notifier", "webhooks"):
        assert ("roomlog_jetstream_consumer_pending_messages", frozenset({("consumer", consumer)})) in found
    assert value(found, "roomlog_relay_lag_events") >= 0
    assert value(found, "roomlog_db_pool_connections_in_use") >= 0


async def test_rate_limit_rejections_are_counted_by_limit(runtime: Runtime, tenant: Tenant) -> None:
    limited = dataclasses.replace(runtime, limiter=RateLimiter(runtime.pool, default_requests=1, default_sends=0,
                                                               metrics=runtime.metrics))
    async with app_client(create_app(runtime.settings, runtime=limited)) as c:
        before = await scrape(c)
        statuses = [(await c.get("/rooms", headers=tenant.as_user("alice"))).status_code for _ in range(3)]
        after = await scrape(c)
    assert 429 in statuses
    counted = {"name": "roomlog_rate_limit_rejections_total", "limit": "requests"}
    assert value(after, **counted) - value(before, **counted) == statuses.count(429)


async def test_metrics_are_404_when_off_or_on_their_own_port(runtime: Runtime) -> None:
    off = dataclasses.replace(runtime, metrics=Metrics(enabled=False))
    elsewhere = dataclasses.replace(runtime, settings=msgspec.structs.replace(runtime.settings, metrics_port=9999))
    for rt in (off, elsewhere):
        async with app_client(create_app(rt.settings, runtime=rt)) as c:
            response = await c.get("/metrics")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "NOT_FOUND")


async def test_request_id_is_echoed_or_generated_and_an_unsafe_one_replaced(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-Id": "req-1.a:b@c_d"})
    assert given.headers["x-request-id"] == "req-1.a:b@c_d"
    generated = (await client.get("/health/live")).headers["x-request-id"]
    assert re.fullmatch(GENERATED, generated)
    seen = {generated}
    for unsafe in ("has space", "x" * 129, "semi;colon", ""):
        echoed = (await client.get("/health/live", headers={"X-Request-Id": unsafe})).headers["x-request-id"]
        assert echoed != unsafe and re.fullmatch(GENERATED, echoed)
        seen.add(echoed)
    assert len(seen) == 5  # each generated id is new


async def test_request_id_is_the_correlation_id_of_the_events_the_request_appends(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    room_id = await new_room(client, tenant)
    response = await client.post(f"/rooms/{room_id}/messages", json={"content": "hi"},
                                 headers={**tenant.as_user("alice"), "X-Request-Id": "trace-send-1"})
    assert response.status_code == 201
    rows = await pool.fetch("SELECT seq, metadata->>'correlation_id' AS cid FROM events WHERE stream_id = $1"
                            " ORDER BY seq", room_id)
    by_seq = {r["seq"]: r["cid"] for r in rows}
    assert by_seq[response.json()["seq"]] == "trace-send-1"
    created = {cid for seq, cid in by_seq.items() if seq != response.json()["seq"]}
    assert len(created) == 1 and None not in created and "trace-send-1" not in created  # the create's own id


async def test_request_id_is_in_the_log_lines_of_its_request(settings: Settings, runtime: Runtime,
                                                             tenant: Tenant) -> None:
    logged = create_app(msgspec.structs.replace(settings, access_log=True), runtime=runtime)
    async with app_client(logged) as c:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as lines:
            traced = await c.get("/rooms", headers={**tenant.as_user("alice"), "X-Request-Id": "trace-log-1"})
            other = await c.get("/rooms", headers=tenant.as_user("alice"))
    access = [line for line in lines if line["event"] == "request"]
    assert [line["request_id"] for line in access] == ["trace-log-1", other.headers["x-request-id"]]
    assert all("request_id" in line for line in lines), lines
    assert traced.status_code == 200
    assert "request_id" not in structlog.contextvars.get_contextvars()  # bound for its own request only


async def test_live_and_ready_answer_200_when_everything_is_up(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "db_writable": True, "nats_connected": True, "relay_running": True,
                            "realtime_ready": True}


@pytest.fixture
async def without_nats(settings: Settings) -> AsyncIterator[Starlette]:
    """An app whose runtime has a NATS URL where no server listens."""
    unreachable = msgspec.structs.replace(settings, nats_url=f"nats://127.0.0.1:{free_port()}")
    own = await start_runtime(unreachable)
    try:
        yield create_app(unreachable, runtime=own)
    finally:
        await stop_runtime(own)


async def test_ready_is_503_while_nats_is_unreachable_and_live_stays_200(without_nats: Starlette) -> None:
    async with app_client(without_nats) as c:
        ready = await c.get("/health/ready")
        live = await c.get("/health/live")
    assert ready.status_code == 503
    assert ready.json() == {"status": "not_ready", "db_writable": True, "nats_connected": False,
                            "relay_running": False, "realtime_ready": False}
    assert live.status_code == 200


def referenced_metrics() -> set[str]:
    """Every roomlog_* series named by the Grafana dashboard's queries and the Prometheus alert rules."""
    dashboard = json.loads((REPO / "deploy/grafana/roomlog.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    return {name for expr in exprs for name in re.findall(r"\broomlog_[a-z_]+\b", expr)}


async def test_every_metric_the_dashboard_and_alerts_use_exists(client: httpx.AsyncClient, runtime: Runtime) -> None:
    assert runtime.sampler is not None
    await runtime.sampler.sample()
    await client.get("/health/live")
    exposed = {name for name, _ in await scrape(client)}
    referenced = referenced_metrics()
    assert len(referenced) >= 15
    assert referenced - exposed == set()


def test_alert_rules_cover_relay_and_catch_up_lag_dead_letters_5xx_and_p99() -> None:
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"RoomlogRelayLagging", "RoomlogCatchUpLagging", "RoomlogDeadLetters", "RoomlogHigh5xxRate",
            "RoomlogHighP99Latency"} <= alerts
