"""Tenant isolation for every route of service.app.ENDPOINTS: tenant B, holding tenant A's real ids, learns nothing.

Each path parameter has an id provider: a real id of one of tenant A's resources and a made-up id of the same
shape. Tenant B's admin and a plain member of B call every route with A's ids and with made-up ids: the answer
is a 403 or 404, byte-for-byte the same in both cases (so not even existence leaks), and A's state — its
streams, keys, webhooks, dead letters, users and settings — is unchanged. A route added with a path parameter
that has no provider fails `test_every_path_parameter_of_every_route_has_an_id_provider`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from projections.dead_letters import dead_letter_id
from schemas.delivery import DeliveryJob
from service.app import ENDPOINTS
from service.consumers.webhook_sender import record_failure
from service.identity.ids import new_id
from service.media.store import ObjectStore
from service.runtime import Runtime
from service.web.endpoints import Endpoint
from tests.conftest import Tenant, make_tenant


def _hex() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class World:
    """Tenant A with one resource of every kind a path parameter can name, and tenant B."""

    a: Tenant
    b: Tenant
    ids: dict[str, str]  # path parameter name -> a real id of tenant A


# Path parameters the `world` fixture gives a real id of tenant A for.
WORLD_IDS = ("room_id", "user_id", "key_id", "webhook_id", "id", "tenant_id", "topic", "message_id", "emoji",
             "session_id", "agent_id", "team_id", "media_id", "article_id", "action_id", "customer_id", "bot_id",
             "ticket_id", "calendar_id", "policy_id")

# Path parameter -> a made-up id of the same shape as the real one (World.ids holds the real one).
MADE_UP: dict[str, Callable[[], str]] = {
    "room_id": lambda: new_id("room"),
    "user_id": lambda: f"bob-{_hex()}",
    "key_id": lambda: new_id("key"),
    "webhook_id": lambda: new_id("wh"),
    "id": lambda: dead_letter_id(f"dlv-{_hex()}"),  # a dead letter
    "tenant_id": lambda: new_id("tn"),
    "topic": lambda: f"secret-topic-{_hex()}",
    "message_id": lambda: new_id("msg"),
    "emoji": lambda: f":e{_hex()}:",
    "session_id": lambda: new_id("sess"),
    "agent_id": lambda: f"agent-{_hex()}",
    "team_id": lambda: f"team-{_hex()}",
    "customer_id": lambda: f"cust-{_hex()}",  # a query filter, not a path parameter
    "media_id": lambda: new_id("med"),
    "article_id": lambda: new_id("kb"),
    "action_id": lambda: f"action_{_hex()}",
    "bot_id": lambda: f"bot-{_hex()}",
    "ticket_id": lambda: new_id("tkt"),
    "calendar_id": lambda: new_id("slacal"),
    "policy_id": lambda: new_id("slapol"),
}
_SLA_CALENDAR = {"name": "office", "timezone": "UTC", "periods": [{"day": "mon", "start": "09:00", "end": "17:00"}]}
_SLA_POLICY = {"name": "p", "targets": {"first_response_minutes": 60, "resolution_minutes": 480}}

# A valid body for every route that takes one and has path parameters: a 400 must not hide the answer.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/rooms/{room_id}"): {"name": "taken over"},
    ("POST", "/rooms/{room_id}/members"): {"user_ids": ["mallory"]},
    ("POST", "/rooms/{room_id}/messages"): {"content": "hello from elsewhere", "client_msg_id": "c-1"},
    ("PATCH", "/rooms/{room_id}/messages/{message_id}"): {"content": "rewritten from elsewhere"},
    ("POST", "/rooms/{room_id}/read"): {"seq": 1},
    ("POST", "/rooms/{room_id}/typing"): {"typing": True},
    ("POST", "/rooms/{room_id}/messages/{message_id}/reactions"): {"emoji": "👎"},
    ("POST", "/rooms/{room_id}/messages/{message_id}/reactions/toggle"): {"emoji": "👎"},
    ("POST", "/rooms/{room_id}/messages/{message_id}/forward"): {"room_ids": ["room_nowhere"]},
    ("PATCH", "/users/{user_id}"): {"role": "admin"},
    ("PATCH", "/admin/tenants/{tenant_id}"): {"rate_limit": 1},
    ("PUT", "/admin/tenants/{tenant_id}/media-limits"): {"max_bytes": 1},
    ("POST", "/support/sessions/{session_id}/messages"): {"content": "hello from elsewhere"},
    ("POST", "/support/sessions/{session_id}/transfer"): {"target_type": "agent", "target_id": "mallory"},
    ("POST", "/support/sessions/{session_id}/escalate"): {"level": "supervisor"},
    ("POST", "/support/sessions/{session_id}/end"): {"resolution": "resolved"},
    ("POST", "/support/sessions/{session_id}/rating"): {"score": 1},
    ("PUT", "/support/agents/{agent_id}"): {"max_sessions": 0},
    ("PUT", "/support/agents/{agent_id}/status"): {"status": "offline"},
    ("PATCH", "/support/teams/{team_id}"): {"name": "taken over"},
    ("POST", "/media/{media_id}/confirm"): {},
    ("PUT", "/support/kb/articles/{article_id}"): {"title": "taken over"},
    ("POST", "/support/quick-actions/{action_id}/execute"): {"context": {"note": "taken over"}},
    ("PATCH", "/bots/{bot_id}"): {"triggers": ["all_messages"], "delivery": {"nats_subject": "bots.taken"}},
    ("PUT", "/support/tickets/{ticket_id}"): {"status": "solved", "assigned_to": "admin"},
    ("POST", "/support/tickets/{ticket_id}/comments"): {"content": "hello from elsewhere"},
    ("POST", "/support/tickets/{ticket_id}/notes"): {"content": "hello from elsewhere"},
    ("POST", "/support/tickets/{ticket_id}/escalate"): {"escalation_type": "tier_2"},
    ("POST", "/support/tickets/{ticket_id}/sla/reapply"): {},
    ("POST", "/support/sessions/{session_id}/ticket"): {},
    ("PUT", "/support/sla/calendars/{calendar_id}"): _SLA_CALENDAR,
    ("PUT", "/support/sla/policies/{policy_id}"): _SLA_POLICY,
}

# The query a route with path parameters needs to get past validation to the answer.
QUERIES: dict[tuple[str, str], dict[str, str]] = {
    ("DELETE", "/rooms/{room_id}"): {"scope": "for_me"},
}

# Routes whose user_id names a user of the caller's own tenant (user ids are per tenant): B blocking "bob" blocks
# B's bob. They succeed for B, so the status is not 403/404 — but the answer must still not depend on A's ids.
CALLERS_OWN_NAMESPACE = {
    ("POST", "/users/{user_id}/block"),
    ("DELETE", "/users/{user_id}/block"),
    ("POST", "/users/{user_id}/erase"),
}


@dataclass(frozen=True)
class Carrier:
    """A route without path parameters that takes one of A's ids in its body or query."""

    method: str
    path: str
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None
    params: Callable[[dict[str, str]], dict[str, str]] | None = None
    statuses: frozenset[int] = frozenset({403, 404})
    # Ids the answer repeats back as the caller sent them (e.g. a sync's `left`): compared as placeholders.
    echoed: tuple[str, ...] = ()


# Routes without path parameters that take ids in body or query, tried with A's ids like the others.
CARRIERS: list[Carrier] = [
    Carrier("POST", "/acks", body=lambda ids: {"room_id": ids["room_id"], "seq": 1}),
    Carrier("POST", "/notify",
            body=lambda ids: {"topic": "x", "payload": {}, "targets": {"room_id": ids["room_id"]}}),
    Carrier("GET", "/admin/dead-letters", params=lambda ids: {"tenant_id": ids["tenant_id"]}),
    # An upload for A's room: B learns what a made-up room would tell it.
    Carrier("POST", "/media/upload-url",
            body=lambda ids: {"filename": "x.png", "content_type": "image/png", "size": 10, "room_id": ids["room_id"]}),
    # A search finds only the caller's tenant: A's user's unique name finds nothing, like a made-up one.
    Carrier("GET", "/users/search", params=lambda ids: {"q": ids["user_id"]}, statuses=frozenset({200})),
    # A's room named as the one to search in finds nothing, like a made-up one.
    Carrier("GET", "/search/messages", params=lambda ids: {"q": "secret", "room_id": ids["room_id"]},
            statuses=frozenset({200})),
    # A's user as the sender to search for finds nothing either.
    Carrier("GET", "/search/messages", params=lambda ids: {"q": "secret", "from_user_id": ids["user_id"]},
            statuses=frozenset({200})),
    # A's room in a sync is one the caller does not read, like a made-up one: listed back as `left`.
    Carrier("POST", "/sync", body=lambda ids: {"rooms": {ids["room_id"]: 0}}, statuses=frozenset({200}),
            echoed=("room_id",)),
    Carrier("GET", "/poll", params=lambda ids: {"rooms": f"{ids['room_id']}:0", "timeout": "0"}),
    # A's customer, agent and team as filters find nothing, like made-up ones (a member of B may not list).
    Carrier("GET", "/support/sessions",
            params=lambda ids: {"customer_id": ids["customer_id"], "agent_id": ids["agent_id"]},
            statuses=frozenset({200, 403})),
    Carrier("GET", "/support/sessions", params=lambda ids: {"team_id": ids["team_id"]},
            statuses=frozenset({200, 403})),
    # Suggestions for A's session: B's admin learns what a made-up session would tell it.
    Carrier("POST", "/support/kb/suggest", body=lambda ids: {"session_id": ids["session_id"], "message": "secret"}),
    # And for A's ticket, whose words the suggestions would read.
    Carrier("POST", "/support/kb/suggest", body=lambda ids: {"ticket_id": ids["ticket_id"]}),
    # A's customer and agent as ticket filters find nothing, like made-up ones.
    Carrier("GET", "/support/tickets",
            params=lambda ids: {"customer_id": ids["customer_id"], "assigned_to": ids["agent_id"]},
            statuses=frozenset({200, 403})),
    # A's session or closed ticket named when filing: B learns what a made-up id would tell it.
    Carrier("POST", "/support/tickets", body=lambda ids: {"subject": "s", "description": "d",
                                                         "customer_id": "b-customer", "session_id": ids["session_id"]},
            statuses=frozenset({400, 403, 404})),
    Carrier("POST", "/support/tickets", body=lambda ids: {"subject": "s", "description": "d",
                                                         "customer_id": "b-customer", "follow_up_of": ids["ticket_id"]},
            statuses=frozenset({400, 403})),
    # A policy on A's calendar: the calendar is not found, as a made-up one.
    Carrier("POST", "/support/sla/policies", body=lambda ids: {**_SLA_POLICY, "calendar_id": ids["calendar_id"]}),
    # A's policy ids are not B's policies: the same 400 as made-up ones (a member of B may not order).
    Carrier("PUT", "/support/sla/policy-order", body=lambda ids: {"policy_ids": [ids["policy_id"]]},
            statuses=frozenset({400, 403})),
    # A's room named for its members' presence: what a made-up room gets.
    Carrier("GET", "/presence", params=lambda ids: {"room_id": ids["room_id"]}),
]

# Routes without path parameters that take no id of another tenant (with the reason).
NO_FOREIGN_IDS: dict[tuple[str, str], str] = {
    ("GET", "/health"): "no tenant data",
    ("GET", "/health/live"): "no tenant data",
    ("GET", "/health/ready"): "no tenant data",
    ("GET", "/metrics"): "counts by route template and outcome, never ids or tenants",
    ("GET", "/openapi.json"): "no tenant data",
    ("GET", "/asyncapi.json"): "no tenant data",
    ("POST", "/auth/signup"): "creates a new tenant",
    ("POST", "/auth/login"): "credentials, not ids",
    ("POST", "/auth/refresh"): "a refresh token, not an id (token attacks are tested in test_auth)",
    ("POST", "/auth/logout"): "the caller's own session",
    ("GET", "/auth/me"): "the caller's own account",
    ("PATCH", "/auth/profile"): "the caller's own profile",
    ("POST", "/auth/change-password"): "the caller's own password",
    ("POST", "/rooms"): "member ids name users of the caller's tenant",
    ("GET", "/rooms"): "the caller's own rooms",
    ("GET", "/unread"): "the caller's own rooms",
    ("GET", "/mentions"): "the caller's own rooms",
    ("POST", "/tokens"): "the caller's own credentials",
    ("GET", "/messaging/token"): "the caller's own credentials",
    ("POST", "/subscriptions"): "topics are per tenant",
    ("GET", "/subscriptions"): "the caller's own subscriptions",
    ("GET", "/users"): "the caller's tenant's users",
    ("POST", "/users"): "user ids name users of the caller's tenant",
    ("GET", "/blocks"): "the caller's own blocks",
    ("POST", "/api-keys"): "creates a key of the caller's tenant",
    ("GET", "/api-keys"): "the caller's tenant's keys",
    ("POST", "/webhooks"): "creates a webhook of the caller's tenant",
    ("GET", "/webhooks"): "the caller's tenant's webhooks",
    ("POST", "/support/sessions"): "customer_id and team_id name the caller's tenant's customers and teams",
    ("GET", "/support/agents"): "the caller's tenant's agents",
    ("POST", "/support/teams"): "creates a team of the caller's tenant",
    ("GET", "/support/teams"): "the caller's tenant's teams",
    ("POST", "/support/routing/replay"): "the caller's tenant's desk history",
    ("GET", "/support/settings"): "the caller's tenant's desk settings",
    ("PUT", "/support/settings"): "sets the caller's tenant's desk settings",
    ("POST", "/support/kb/articles"): "creates an article of the caller's tenant",
    ("GET", "/support/kb/articles"): "the caller's tenant's articles",
    ("GET", "/support/kb/search"): "searches the caller's tenant's articles only (tests/service/test_support_kb.py)",
    ("GET", "/support/quick-actions"): "the built-in actions and the caller's tenant's",
    ("POST", "/support/quick-actions"): "creates an action of the caller's tenant",
    **{("GET", e.path): "the console's static files, the same for everyone" for e in ENDPOINTS
       if e.path.startswith("/console/")},
    ("POST", "/bots"): "the bot's user id names a user of the caller's tenant",
    ("GET", "/bots"): "the caller's tenant's bots",
    ("GET", "/support/sla/calendars"): "the caller's tenant's calendars",
    ("POST", "/support/sla/calendars"): "creates a calendar of the caller's tenant",
    ("GET", "/support/sla/policies"): "the caller's tenant's policies",
    ("POST", "/support/sla/match"): "ticket attributes, not ids; matches the caller's tenant's policies",
    ("GET", "/support/analytics"): "the caller's tenant's sessions and tickets only (tests/service/"
                                   "test_support_analytics.py)",
    ("PUT", "/presence"): "sets the caller's own status",
    ("GET", "/presence/online"): "the caller's tenant's active users",
}


def path_params(path: str) -> list[str]:
    """The names of a path template's parameters."""
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


WITH_PATH_PARAMS = [e for e in ENDPOINTS if path_params(e.path)]
WITHOUT_PATH_PARAMS = [e for e in ENDPOINTS if not path_params(e.path)]
CALLERS = ("admin", "b-member")  # B's admin, and an unregistered user of B (a member)
SUPPORT_WITH_PATH_PARAMS = [e for e in WITH_PATH_PARAMS if e.path.startswith("/support/")]


def test_every_path_parameter_of_every_route_has_an_id_provider() -> None:
    names = {name for e in WITH_PATH_PARAMS for name in path_params(e.path)}
    assert names - set(MADE_UP) == set()
    assert names - set(WORLD_IDS) == set()


def test_every_route_with_path_parameters_and_a_body_has_a_valid_body() -> None:
    assert [(e.method, e.path) for e in WITH_PATH_PARAMS if e.body is not None and (e.method, e.path) not in BODIES] \
        == []


def test_every_route_without_path_parameters_is_tried_with_foreign_ids_or_listed_as_taking_none() -> None:
    tried = {(c.method, c.path) for c in CARRIERS}
    assert [(e.method, e.path) for e in WITHOUT_PATH_PARAMS if (e.method, e.path) not in tried | set(NO_FOREIGN_IDS)] \
        == []


# --- tenant A's resources ----------------------------------------------------------------------------------

async def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    """The JSON body of a set-up request that must succeed."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
async def world(app: Starlette, runtime: Runtime, database_url: str, media_store: ObjectStore) -> World:
    """Tenant A with one resource of every kind, and tenant B: one world for the module. Each test compares A's
    state before and after its own calls, so what an earlier test did cannot hide what a later one does."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as client:
        return await _build_world(client, runtime, database_url)


async def _build_world(client: httpx.AsyncClient, runtime: Runtime, database_url: str) -> World:
    """Tenant A with a room holding a message, a registered user in it, a key, a webhook, a dead letter, a topic,
    and a confirmed upload."""
    a, b = await make_tenant(database_url), await make_tenant(database_url)
    admin = a.as_user("admin")
    bob = f"bob-{_hex()}"
    await ok(await client.post("/users", json={"user_id": bob, "display_name": bob}, headers=admin))
    room = await ok(await client.post("/rooms", json={"type": "group", "members": [bob]}, headers=admin))
    message = await ok(await client.post(f"/rooms/{room['room_id']}/messages",
                                         json={"content": "secret", "client_msg_id": "c-1"}, headers=admin))
    emoji = f":e{_hex()}:"
    await ok(await client.post(f"/rooms/{room['room_id']}/messages/{message['message_id']}/reactions",
                               json={"emoji": emoji}, headers=admin), 200)
    key = await ok(await client.post("/api-keys", json={"name": "a's key", "role": "member"}, headers=admin))
    hook = await ok(await client.post("/webhooks", json={"url": "http://127.0.0.1:9/a", "events": ["notification"]},
                                      headers=admin))
    topic = f"secret-topic-{_hex()}"
    await ok(await client.post("/subscriptions", json={"topic": topic}, headers=a.as_user(bob)))
    job = DeliveryJob(delivery_id=f"dlv-{_hex()}", tenant_id=a.tenant_id, webhook_id=hook["webhook_id"],
                      kind="notification", event="notification", user_id=bob, created_at=datetime.now(UTC),
                      payload={}, topic=topic)
    await record_failure(runtime.appender, job, generation=job.delivery_id, attempts=3, error="boom",
                         at=datetime.now(UTC))
    agent, customer = f"agent-{_hex()}", f"cust-{_hex()}"
    await ok(await client.post("/users", json={"user_id": agent, "display_name": agent, "role": "agent"},
                               headers=admin))
    await ok(await client.post("/users", json={"user_id": customer, "display_name": customer, "role": "customer"},
                               headers=admin))
    await ok(await client.put(f"/support/agents/{agent}", json={"max_sessions": 1}, headers=admin), 200)
    await ok(await client.put(f"/support/agents/{agent}/status", json={"status": "available"},
                              headers=a.as_user(agent)), 200)
    team = await ok(await client.post("/support/teams", json={"name": "a's team", "members": [agent]}, headers=admin))
    session = await ok(await client.post("/support/sessions", json={"initial_message": "secret"},
                                         headers=a.as_user(customer)))
    await ok(await client.post("/users", json={"user_id": "b-customer", "display_name": "c", "role": "customer"},
                               headers=b.as_user("admin")))
    tiny_png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c6338c1c5050002"
        "7a00dd6727427d0000000049454e44ae426082"
    )
    upload = await ok(await client.post("/media/upload-url", headers=admin,
                                        json={"filename": "a.png", "content_type": "image/png", "size": len(tiny_png)}))
    async with httpx.AsyncClient() as store:
        assert (await store.put(upload["upload_url"], content=tiny_png, headers=upload["headers"])).status_code == 200
    await ok(await client.post(f"/media/{upload['media_id']}/confirm", json={}, headers=admin), 200)
    article = await ok(await client.post("/support/kb/articles", headers=admin,
                                         json={"title": "secret", "body": "secret", "status": "published"}))
    action = await ok(await client.post("/support/quick-actions", headers=admin, json={
        "id": f"action_{_hex()}", "name": "a's action", "url": "http://127.0.0.1:9/a"}))
    bot = await ok(await client.post("/bots", headers=admin, json={
        "user_id": f"bot-{_hex()}", "display_name": "a's bot", "triggers": ["mention"],
        "delivery": {"webhook_url": "http://127.0.0.1:9/a-bot", "secret": "a" * 32}}))
    ticket = await ok(await client.post("/support/tickets", headers=admin, json={
        "subject": "secret", "description": "secret", "customer_id": customer, "session_id": session["session_id"]}))
    await ok(await client.post(f"/support/tickets/{ticket['id']}/notes", json={"content": "secret"}, headers=admin))
    calendar = await ok(await client.post("/support/sla/calendars", json=_SLA_CALENDAR, headers=admin))
    sla_policy = await ok(await client.post("/support/sla/policies", headers=admin,
                                            json={**_SLA_POLICY, "calendar_id": calendar["calendar_id"]}))
    ids = {
        "calendar_id": calendar["calendar_id"], "policy_id": sla_policy["policy_id"],
        "article_id": article["id"], "action_id": action["action"]["id"], "customer_id": customer,
        "bot_id": bot["bot_id"],
        "session_id": session["session_id"], "agent_id": agent, "team_id": team["team_id"],
        "media_id": upload["media_id"], "ticket_id": ticket["id"],
        "room_id": room["room_id"], "user_id": bob, "key_id": key["key_id"], "webhook_id": hook["webhook_id"],
        "id": dead_letter_id(job.delivery_id), "tenant_id": a.tenant_id, "topic": topic,
        "message_id": message["message_id"], "emoji": emoji,
    }
    assert set(ids) == set(WORLD_IDS)
    return World(a, b, ids)


async def snapshot(pool: asyncpg.Pool, tenant_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Everything of a tenant a foreign call could change: every stream's seq, and the mutable tables."""
    queries = {
        "streams": "SELECT stream_id, last_seq FROM streams WHERE tenant_id = $1 ORDER BY 1",
        "members": "SELECT room_id, user_id, role, active FROM members WHERE tenant_id = $1 ORDER BY 1, 2",
        "rooms": "SELECT room_id, name, metadata FROM rooms WHERE tenant_id = $1 ORDER BY 1",
        "messages": "SELECT message_id, content, edit_seq, deleted_seq FROM messages WHERE tenant_id = $1 ORDER BY 1",
        "keys": "SELECT key_id, role, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY 1",
        "webhooks": "SELECT webhook_id, url FROM webhooks WHERE tenant_id = $1 ORDER BY 1",
        "dead_letters": "SELECT id, status, retries FROM dead_letters WHERE tenant_id = $1 ORDER BY 1",
        "users": "SELECT user_id, role, display_name FROM users WHERE tenant_id = $1 ORDER BY 1",
        "user_rooms": "SELECT user_id, room_id, muted, archived, archived_seq, cleared_seq FROM user_rooms"
                      " WHERE tenant_id = $1 ORDER BY 1, 2",
        "tenant": "SELECT name, rate_limit, send_rate_limit FROM tenants WHERE tenant_id = $1",
        "media": "SELECT media_id, status, sha256 FROM media WHERE tenant_id = $1 ORDER BY 1",
        "kb_articles": "SELECT article_id, title, version FROM kb_articles WHERE tenant_id = $1 ORDER BY 1",
        "quick_actions": "SELECT action_id, url, deleted_at FROM quick_actions WHERE tenant_id = $1 ORDER BY 1",
        "support_credit": "SELECT customer_id, seq FROM support_credit WHERE tenant_id = $1 ORDER BY 1, 2",
        "bots": "SELECT bot_id, triggers, webhook_url, secret_id, nats_subject, deleted_at FROM bots"
                " WHERE tenant_id = $1 ORDER BY 1",
        "bot_secrets": "SELECT secret_id, bot_id, secret FROM bot_secrets WHERE tenant_id = $1 ORDER BY 1",
        "tickets": "SELECT ticket_id, status, priority, assigned_to, ticket_seq FROM support_tickets"
                   " WHERE tenant_id = $1 ORDER BY 1",
    }
    return {name: [tuple(r) for r in await pool.fetch(q, tenant_id)] for name, q in queries.items()}


# --- the calls ----------------------------------------------------------------------------------------------


def answer(response: httpx.Response, ids: dict[str, str] | None = None, echoed: tuple[str, ...] = ()
           ) -> tuple[int, Any]:
    """What a caller learns from a response: its status and its body (with the `echoed` ids as placeholders)."""
    text = response.text
    for name in echoed:
        assert ids is not None
        text = text.replace(ids[name], f"<{name}>")
    return response.status_code, json.loads(text)


@pytest.mark.parametrize("endpoint", SUPPORT_WITH_PATH_PARAMS,
                         ids=[f"{e.method} {e.path}" for e in SUPPORT_WITH_PATH_PARAMS])
async def test_a_customer_of_another_tenant_gets_the_answer_of_made_up_ids_on_support_routes(
    client: httpx.AsyncClient, runtime: Runtime, world: World, endpoint: Endpoint
) -> None:
    await test_foreign_ids_in_the_path_get_the_answer_of_made_up_ids_and_change_nothing(
        client, runtime, world, endpoint, "b-customer"
    )


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", WITH_PATH_PARAMS, ids=[f"{e.method} {e.path}" for e in WITH_PATH_PARAMS])
async def test_foreign_ids_in_the_path_get_the_answer_of_made_up_ids_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime, world: World, endpoint: Endpoint, caller: str
) -> None:
    names = path_params(endpoint.path)
    body = BODIES.get((endpoint.method, endpoint.path))
    query = QUERIES.get((endpoint.method, endpoint.path))
    headers = world.b.as_user(caller)
    before = await snapshot(runtime.pool, world.a.tenant_id)
    foreign = await client.request(endpoint.method, endpoint.path.format(**{n: world.ids[n] for n in names}),
                                   json=body, params=query, headers=headers)
    made_up = await client.request(endpoint.method, endpoint.path.format(**{n: MADE_UP[n]() for n in names}),
                                   json=body, params=query, headers=headers)
    if (endpoint.method, endpoint.path) not in CALLERS_OWN_NAMESPACE:
        assert foreign.status_code in (403, 404), foreign.text
    assert answer(foreign) == answer(made_up)
    assert await snapshot(runtime.pool, world.a.tenant_id) == before


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("carrier", CARRIERS, ids=[f"{c.method} {c.path}" for c in CARRIERS])
async def test_foreign_ids_in_body_or_query_get_the_answer_of_made_up_ids_and_change_nothing(
    client: httpx.AsyncClient, runtime: Runtime, world: World, carrier: Carrier, caller: str
) -> None:
    made_up_ids = {name: make() for name, make in MADE_UP.items()}
    headers = world.b.as_user(caller)
    before = await snapshot(runtime.pool, world.a.tenant_id)

    async def call(ids: dict[str, str]) -> httpx.Response:
        return await client.request(carrier.method, carrier.path, headers=headers,
                                    json=carrier.body(ids) if carrier.body else None,
                                    params=carrier.params(ids) if carrier.params else None)

    foreign, made_up = await call(world.ids), await call(made_up_ids)
    assert foreign.status_code in carrier.statuses, foreign.text
    assert answer(foreign, world.ids, carrier.echoed) == answer(made_up, made_up_ids, carrier.echoed)
    assert await snapshot(runtime.pool, world.a.tenant_id) == before


async def test_tenant_a_still_reaches_every_resource_the_foreign_calls_named(
    client: httpx.AsyncClient, world: World
) -> None:
    # The providers give live ids: the same requests as tenant A's admin find them (so the 404s above are
    # isolation, not ids that never existed).
    admin = world.a.as_user("admin")
    ids = world.ids
    assert (await client.get(f"/rooms/{ids['room_id']}", headers=admin)).status_code == 200
    assert ids["user_id"] in [u["user_id"] for u in (await client.get("/users", headers=admin)).json()]
    assert ids["key_id"] in [k["key_id"] for k in (await client.get("/api-keys", headers=admin)).json()]
    assert ids["webhook_id"] in [w["webhook_id"] for w in (await client.get("/webhooks", headers=admin)).json()]
    letters = (await client.get("/admin/dead-letters", headers=admin)).json()["failed_notifications"]
    assert ids["id"] in [d["id"] for d in letters]
    subscriptions = (await client.get("/subscriptions", headers=world.a.as_user(ids["user_id"]))).json()
    assert ids["topic"] in [s["topic"] for s in subscriptions]
    session = await client.get(f"/support/sessions/{ids['session_id']}", headers=admin)
    assert session.json()["assigned_agent"]["id"] == ids["agent_id"]
    assert (await client.get(f"/support/teams/{ids['team_id']}", headers=admin)).status_code == 200
    assert (await client.get(f"/media/{ids['media_id']}", headers=admin)).json()["status"] == "confirmed"
    assert (await client.get(f"/bots/{ids['bot_id']}", headers=admin)).status_code == 200
    assert (await client.get(f"/support/tickets/{ids['ticket_id']}", headers=admin)).json()["subject"] == "secret"
    assert [c["calendar_id"] for c in (await client.get("/support/sla/calendars", headers=admin)).json()] == \
        [ids["calendar_id"]]
    assert [p["policy_id"] for p in (await client.get("/support/sla/policies", headers=admin)).json()] == \
        [ids["policy_id"]]


@pytest.mark.parametrize("caller", CALLERS)
async def test_presence_of_a_foreign_user_reads_as_a_made_up_one_and_online_lists_none_of_them(
    client: httpx.AsyncClient, world: World, caller: str
) -> None:
    user_id = world.ids["user_id"]
    put = await client.put("/presence", json={"status": "dnd", "status_text": "secret"},
                           headers=world.a.as_user(user_id))  # active, with a status, in tenant A
    assert put.status_code == 200, put.text
    headers = world.b.as_user(caller)
    made_up = MADE_UP["user_id"]()
    found = (await client.get("/presence", params={"user_ids": f"{user_id},{made_up}"}, headers=headers)).json()
    assert [{k: v for k, v in p.items() if k != "user_id"} for p in found] == [
        {"status": "offline", "last_seen": None, "status_text": None, "status_emoji": None}] * 2
    online = (await client.get("/presence/online", headers=headers)).json()
    assert user_id not in [p["user_id"] for p in online]
