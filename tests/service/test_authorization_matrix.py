"""The authorization matrix, driven by the table the code itself consults (`service.domain.authorization.ACTIONS`).

Two halves: the table's own functions (`allowed`, `authorize`) against each rule's role sets, and the HTTP API
against the same table — for every action with a route, every tenant role (member, agent, admin, the platform
admin) and, for actions inside a room, every room role (none, member, admin), the request succeeds exactly
when `allowed(action, tenant_role, room_role)` and is otherwise a 403 with the rule's code (NOT_A_MEMBER when
a non-member is refused something inside a room: see service.domain.rooms._authorize_in_room and
projections.guards.membership_error).
"""

from __future__ import annotations

import dataclasses
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from schemas.config import Settings
from schemas.delivery import DeliveryJob
from schemas.errors import Forbidden, NotAMember
from schemas.roles import ROOM_ROLES, TENANT_ROLES
from service.app import ENDPOINTS, create_app
from service.consumers.webhook_sender import record_failure
from service.domain.authorization import ACTIONS, Action, allowed, authorize
from service.identity.auth import Authenticator
from service.media.store import ObjectStore
from service.runtime import Runtime
from tests.conftest import Tenant

# A 1x1 PNG, for the media routes.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c6338c1c5050002"
    "7a00dd6727427d0000000049454e44ae426082"
)
PLATFORM_KEY = "rlk_platform_matrix_" + uuid.uuid4().hex
CALLER_ROLES = (*TENANT_ROLES, "platform")
ROOM_ROLE_CHOICES: tuple[str | None, ...] = (None, *ROOM_ROLES)

# Actions of the table that no HTTP route performs (each with the reason). Empty today: every action has a route.
ACTIONS_WITHOUT_ROUTE: dict[str, str] = {}
_SESSION = "/support/sessions/{session_id}"
_ARTICLE = "/support/kb/articles/{article_id}"
_TICKET = "/support/tickets/{ticket_id}"
_SLA_CALENDAR = {"name": "office", "timezone": "Europe/Berlin", "periods": [{"day": "mon", "start": "09:00",
                                                                            "end": "17:00"}]}


def _sla_policy(calendar_id: str | None = None) -> dict[str, Any]:
    return {"name": "default", "calendar_id": calendar_id,
            "targets": {"first_response_minutes": 60, "resolution_minutes": 480}}

# Authenticated routes that are deliberately not governed by an action of the table, with the reason.
ROUTES_WITHOUT_ACTION: dict[tuple[str, str], str] = {
    ("POST", "/auth/logout"): "ends the caller's own session",
    ("GET", "/auth/me"): "the caller's own account",
    ("PATCH", "/auth/profile"): "the caller's own profile",
    ("POST", "/auth/change-password"): "the caller's own password",
}


# --- the table's functions ----------------------------------------------------------------------------------


def expected_allowed(action: str, tenant_role: str, room_role: str | None) -> bool:
    """What the rule's sets say, read directly."""
    rule = ACTIONS[action]
    return tenant_role in rule.tenant_roles or room_role in rule.room_roles


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_allowed_answers_what_the_rules_role_sets_say(action: str) -> None:
    wrong = [
        (tenant_role, room_role)
        for tenant_role in CALLER_ROLES
        for room_role in ROOM_ROLE_CHOICES
        if allowed(action, tenant_role, room_role) != expected_allowed(action, tenant_role, room_role)
    ]
    assert wrong == []


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_authorize_raises_the_rules_error_exactly_when_not_allowed(action: str) -> None:
    rule = ACTIONS[action]
    for tenant_role in CALLER_ROLES:
        for room_role in ROOM_ROLE_CHOICES:
            if expected_allowed(action, tenant_role, room_role):
                authorize(action, tenant_role, room_role)
                continue
            with pytest.raises(rule.denied) as raised:
                authorize(action, tenant_role, room_role)
            assert (type(raised.value), raised.value.code, raised.value.status) == (
                rule.denied, rule.denied.code, 403
            ), (tenant_role, room_role)


def test_every_rule_names_known_roles_and_a_403_error_class() -> None:
    for action, rule in ACTIONS.items():
        assert rule.tenant_roles <= set(CALLER_ROLES), action
        assert rule.room_roles <= set(ROOM_ROLES), action
        assert issubclass(rule.denied, Forbidden) and rule.denied.status == 403, action
        assert rule.message, action


def test_action_table_holds_exactly_the_actions_of_the_action_type() -> None:
    assert set(ACTIONS) == set(typing.get_args(Action))


# --- the HTTP API against the table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request performing an action; `ids` maps a path parameter to the Scene id filling it."""

    method: str
    path: str
    body: Callable[[Scene], dict[str, Any]] | None = None
    params: dict[str, str] | Callable[[Scene], dict[str, str]] | None = None
    ids: dict[str, str] = field(default_factory=dict)

    def url(self, scene: Scene) -> str:
        names = [part[1:-1] for part in self.path.split("/") if part.startswith("{")]
        return self.path.format(**{name: scene.ids[self.ids.get(name, name)] for name in names})


@dataclass
class Scene:
    """One tenant set up for one (tenant role, room role): the caller, a victim user and the ids the calls need."""

    tenant: Tenant
    headers: dict[str, str]
    ids: dict[str, str]  # what path parameters and bodies name: caller, victim, room_id, key_id, ...

    @property
    def victim(self) -> str:
        return self.ids["victim"]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Every action with a route, and the requests that perform it, in an order where each one's precondition holds
# when the earlier ones were allowed (subscribe before unsubscribing; leave the room last).
CALLS: dict[str, tuple[Call, ...]] = {
    "room.create": (Call("POST", "/rooms", body=lambda s: {"type": "group", "members": [s.victim]}),),
    "room.join": (Call("POST", "/rooms/{room_id}/join", ids={"room_id": "public_channel"}),),
    "rooms.list": (Call("GET", "/rooms"), Call("GET", "/rooms", params={"discover": "public"}),
                   Call("GET", "/unread"), Call("GET", "/mentions")),
    "messages.search": (Call("GET", "/search/messages", params={"q": "hello"}),),
    # own_room: a room the caller is a member of (sync and poll then check each room's membership too).
    "rooms.sync": (
        Call("POST", "/sync", body=lambda s: {"rooms": {s.ids["own_room"]: 0}}),
        Call("GET", "/poll", params=lambda s: {"rooms": f"{s.ids['own_room']}:0", "timeout": "0"}),
    ),
    "room.typing": (Call("POST", "/rooms/{room_id}/typing", body=lambda s: {"typing": True}),),
    "tokens.issue": (Call("POST", "/tokens"), Call("GET", "/messaging/token")),
    "room.read": (
        Call("GET", "/rooms/{room_id}"),
        Call("GET", "/rooms/{room_id}/members"),
        Call("GET", "/rooms/{room_id}/messages"),
        Call("GET", "/rooms/{room_id}/events"),
        Call("GET", "/rooms/{room_id}/receipts"),
        Call("GET", "/rooms/{room_id}/messages/{message_id}", ids={"message_id": "victim_message"}),
        Call("GET", "/rooms/{room_id}/messages/{message_id}/reactions", ids={"message_id": "victim_message"}),
        # Reading the source is what the route checks; each target answers for itself in the body.
        Call("POST", "/rooms/{room_id}/messages/{message_id}/forward", body=lambda s: {"room_ids": ["room_x"]},
             ids={"message_id": "victim_message"}),
    ),
    "message.send": (Call("POST", "/rooms/{room_id}/messages", body=lambda s: {"content": "hello"}),),
    # own_message: the caller's own (sent before they left, when they are no member now); victim_message: another's.
    "message.edit": (Call("PATCH", "/rooms/{room_id}/messages/{message_id}", body=lambda s: {"content": "edited"},
                          ids={"message_id": "own_message"}),),
    "message.delete": (Call("DELETE", "/rooms/{room_id}/messages/{message_id}", ids={"message_id": "own_message"}),),
    "message.moderate": (
        Call("DELETE", "/rooms/{room_id}/messages/{message_id}", ids={"message_id": "victim_message"}),
    ),
    "message.react": (
        Call("POST", "/rooms/{room_id}/messages/{message_id}/reactions", body=lambda s: {"emoji": s.ids["emoji"]},
             ids={"message_id": "victim_message"}),
        Call("DELETE", "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
             ids={"message_id": "victim_message"}),
        Call("POST", "/rooms/{room_id}/messages/{message_id}/reactions/toggle",
             body=lambda s: {"emoji": s.ids["emoji"]}, ids={"message_id": "victim_message"}),
    ),
    "ack.send": (
        Call("POST", "/acks", body=lambda s: {"room_id": s.ids["room_id"], "seq": 1}),
        Call("POST", "/rooms/{room_id}/read", body=lambda s: {"seq": 1}),
    ),
    "room.personalize": (
        Call("POST", "/rooms/{room_id}/mute"),
        Call("DELETE", "/rooms/{room_id}/mute"),
        Call("POST", "/rooms/{room_id}/archive"),
        Call("DELETE", "/rooms/{room_id}/archive"),
        Call("DELETE", "/rooms/{room_id}", params={"scope": "for_me"}),
    ),
    "room.update": (Call("PATCH", "/rooms/{room_id}", body=lambda s: {"name": "renamed"}),),
    "room.delete": (Call("DELETE", "/rooms/{room_id}", params={"scope": "for_everyone"}),),
    "member.add": (Call("POST", "/rooms/{room_id}/members", body=lambda s: {"user_ids": [_unique("newbie")]}),),
    "member.remove": (Call("DELETE", "/rooms/{room_id}/members/{user_id}", ids={"user_id": "victim"}),),
    "member.leave": (Call("DELETE", "/rooms/{room_id}/members/{user_id}", ids={"user_id": "caller"}),),
    "users.read": (Call("GET", "/users"), Call("GET", "/users/search", params={"q": "victim"})),
    "users.manage": (
        Call("POST", "/users", body=lambda s: {"display_name": "new", "user_id": _unique("new"), "role": "member"}),
        Call("PATCH", "/users/{user_id}", body=lambda s: {"display_name": "renamed"}, ids={"user_id": "victim"}),
    ),
    "users.erase": (Call("POST", "/users/{user_id}/erase", ids={"user_id": "victim"}),),
    "blocks.manage": (
        Call("POST", "/users/{user_id}/block", ids={"user_id": "victim"}),
        Call("GET", "/blocks"),
        Call("DELETE", "/users/{user_id}/block", ids={"user_id": "victim"}),
    ),
    "presence.set": (Call("PUT", "/presence", body=lambda s: {"status": "dnd", "status_text": "busy"}),),
    "presence.read": (Call("GET", "/presence", params={"user_ids": "victim"}), Call("GET", "/presence/online")),
    "api_keys.manage": (
        Call("POST", "/api-keys", body=lambda s: {"name": "matrix", "role": "member"}),
        Call("GET", "/api-keys"),
        Call("DELETE", "/api-keys/{key_id}"),
    ),
    "webhooks.manage": (
        Call("POST", "/webhooks", body=lambda s: {"url": "http://127.0.0.1:9/hook", "events": ["notification"]}),
        Call("GET", "/webhooks"),
        Call("DELETE", "/webhooks/{webhook_id}"),
    ),
    "dead_letters.read": (Call("GET", "/admin/dead-letters"),),
    "dead_letters.manage": (
        Call("POST", "/admin/dead-letters/{id}/retry", ids={"id": "dead_letter_to_retry"}),
        Call("DELETE", "/admin/dead-letters/{id}", ids={"id": "dead_letter_to_discard"}),
    ),
    "tenant.settings": (
        Call("GET", "/admin/tenants/{tenant_id}"),
        Call("PATCH", "/admin/tenants/{tenant_id}", body=lambda s: {"rate_limit": 0}),
        Call("GET", "/admin/tenants/{tenant_id}/media-limits"),
        Call("PUT", "/admin/tenants/{tenant_id}/media-limits", body=lambda s: {"max_bytes": 1000}),
    ),
    "notifications.send": (
        Call("POST", "/notify", body=lambda s: {"topic": "matrix", "payload": {}, "targets": {"user_ids": [s.victim]}}),
    ),
    "media.upload": (
        Call("POST", "/media/upload-url",
             body=lambda s: {"filename": "m.png", "content_type": "image/png", "size": len(TINY_PNG)}),
        Call("POST", "/media/{media_id}/confirm", body=lambda s: {}, ids={"media_id": "uploaded_media"}),
    ),
    "media.read": (Call("GET", "/media/{media_id}", ids={"media_id": "confirmed_media"}),),
    "subscriptions.manage": (
        Call("POST", "/subscriptions", body=lambda s: {"topic": s.ids["topic"]}),
        Call("GET", "/subscriptions"),
        Call("DELETE", "/subscriptions/{topic}"),
    ),
    # The support desk: each scene has a session of its customer (the caller, when a customer) assigned to a
    # desk agent, an ended one, and a team.
    "support.session.start": (Call("POST", "/support/sessions", body=lambda s: {"customer_id": s.ids["customer"]}),),
    "support.session.read": (Call("GET", "/support/sessions"), Call("GET", _SESSION)),
    "support.session.message": (Call("POST", f"{_SESSION}/messages", body=lambda s: {"content": "hello"}),),
    "support.session.work": (
        Call("POST", f"{_SESSION}/hold"),
        Call("POST", f"{_SESSION}/resume"),
        Call("POST", f"{_SESSION}/transfer", body=lambda s: {"target_type": "team", "target_id": s.ids["team_id"]}),
        Call("POST", f"{_SESSION}/escalate", body=lambda s: {"level": "tier2"}),
    ),
    "support.session.end": (Call("POST", f"{_SESSION}/end", body=lambda s: {"resolution": "resolved"}),),
    "support.session.rate": (Call("POST", f"{_SESSION}/rating", body=lambda s: {"score": 4},
                                  ids={"session_id": "ended_session"}),),
    "support.routing.read": (Call("GET", f"{_SESSION}/routing"),),
    "support.agents.read": (Call("GET", "/support/agents"),
                            Call("GET", "/support/agents/{agent_id}/status", ids={"agent_id": "desk_agent"})),
    "support.agents.manage": (Call("PUT", "/support/agents/{agent_id}", body=lambda s: {"max_sessions": 3},
                                   ids={"agent_id": "desk_agent"}),),
    "support.agent.status": (Call("PUT", "/support/agents/{agent_id}/status", body=lambda s: {"status": "away"},
                                  ids={"agent_id": "own_agent"}),),
    "support.teams.read": (Call("GET", "/support/teams"), Call("GET", "/support/teams/{team_id}")),
    "support.policy.replay": (Call("POST", "/support/routing/replay", body=lambda s: {"policy": "round_robin"}),),
    "support.settings.read": (Call("GET", "/support/settings"),),
    "support.settings.manage": (Call("PUT", "/support/settings", body=lambda s: {"refuse_without_agents": False}),),
    "support.kb.read": (Call("GET", "/support/kb/articles"), Call("GET", _ARTICLE),
                        Call("GET", "/support/kb/search", params={"q": "matrix"})),
    "support.kb.manage": (Call("POST", "/support/kb/articles", body=lambda s: {"title": "new", "body": "text"}),
                          Call("PUT", _ARTICLE, body=lambda s: {"title": "renamed"}), Call("DELETE", _ARTICLE)),
    "support.kb.suggest": (Call("POST", "/support/kb/suggest", body=lambda s: {"message": "matrix"}),),
    "support.quick_actions.read": (Call("GET", "/support/quick-actions"),),
    "support.quick_actions.manage": (
        Call("POST", "/support/quick-actions", body=lambda s: {"id": _unique("qa"), "name": "matrix",
                                                               "url": "http://127.0.0.1:9/qa"}),
        Call("DELETE", "/support/quick-actions/{action_id}")),
    "support.quick_actions.execute": (
        Call("POST", "/support/quick-actions/{action_id}/execute", ids={"action_id": "builtin_action"},
             body=lambda s: {"session_id": s.ids["session_id"], "context": {"note": "matrix"}}),),
    "support.credit.read": (Call("GET", "/support/customers/{customer_id}/credit", ids={"customer_id": "customer"}),),
    "support.ticket.create": (Call("POST", "/support/tickets", body=lambda s: {
        "subject": "s", "description": "d", "customer_id": s.ids["customer"]}),),
    "support.ticket.read": (Call("GET", "/support/tickets"), Call("GET", _TICKET)),
    "support.ticket.comment": (Call("POST", f"{_TICKET}/comments", body=lambda s: {"content": "hello"}),),
    "support.ticket.work": (
        Call("PUT", _TICKET, body=lambda s: {"priority": "high"}),
        Call("POST", f"{_TICKET}/notes", body=lambda s: {"content": "internal"}),
        Call("POST", f"{_TICKET}/escalate", body=lambda s: {"escalation_type": "tier_2"}),
        Call("POST", f"{_TICKET}/sla/reapply"),
        Call("POST", f"{_SESSION}/ticket", body=lambda s: {}),
    ),
    "support.teams.manage": (Call("POST", "/support/teams", body=lambda s: {"name": "new team"}),
                             Call("PATCH", "/support/teams/{team_id}", body=lambda s: {"name": "renamed"})),
    "bots.manage": (
        Call("POST", "/bots", body=lambda s: {"user_id": _unique("bot"), "display_name": "b", "triggers": ["mention"],
                                              "delivery": {"nats_subject": "bots.matrix"}}),
        Call("GET", "/bots"),
        Call("GET", "/bots/{bot_id}"),
        Call("PATCH", "/bots/{bot_id}", body=lambda s: {"triggers": ["dm"]}),
        Call("DELETE", "/bots/{bot_id}"),
    ),
    "support.sla.read": (Call("GET", "/support/sla/calendars"), Call("GET", "/support/sla/policies"),
                         Call("POST", "/support/sla/match", body=lambda s: {})),
    "support.analytics.read": (Call("GET", "/support/analytics"),),
    "support.sla.manage": (
        Call("POST", "/support/sla/calendars", body=lambda s: _SLA_CALENDAR),
        Call("PUT", "/support/sla/calendars/{calendar_id}", body=lambda s: _SLA_CALENDAR),
        Call("PUT", "/support/sla/policy-order", body=lambda s: {"policy_ids": s.ids["policy_order"].split()}),
        Call("POST", "/support/sla/policies", body=lambda s: _sla_policy()),
        Call("PUT", "/support/sla/policies/{policy_id}", body=lambda s: _sla_policy(s.ids["calendar_id"])),
        Call("DELETE", "/support/sla/policies/{policy_id}"),
        Call("DELETE", "/support/sla/calendars/{calendar_id}"),
    ),
}

SUCCESS_STATUS = {(e.method, e.path): e.status for e in ENDPOINTS}


def in_room(action: str) -> bool:
    """Whether the action happens inside a room: its rule grants it by room role."""
    return bool(ACTIONS[action].room_roles)


def matrix() -> list[tuple[str, str, str | None]]:
    """Every (action, tenant role, room role) with a route; room roles only for actions inside a room.

    A customer is never a room's admin: rooms are created by others (it may not create one), and support
    rooms make their customer a member. Neither is a bot: it may not create rooms, and is added as a member.
    """
    return [
        (action, tenant_role, room_role)
        for action in sorted(CALLS)
        for tenant_role in CALLER_ROLES
        for room_role in (ROOM_ROLE_CHOICES if in_room(action) else (None,))
        if (tenant_role, room_role) not in (("customer", "admin"), ("bot", "admin"))
    ]


def refusal_code(action: str, room_role: str | None) -> str:
    """The code a refused caller gets: NOT_A_MEMBER for non-members inside a room, else the rule's."""
    if in_room(action) and room_role is None:
        return NotAMember.code
    return ACTIONS[action].denied.code


def test_every_action_of_the_table_with_a_route_is_exercised_over_http() -> None:
    assert set(CALLS) == set(ACTIONS) - set(ACTIONS_WITHOUT_ROUTE)


def test_every_request_of_the_matrix_is_a_declared_endpoint() -> None:
    assert [(c.method, c.path) for calls in CALLS.values() for c in calls if (c.method, c.path) not in SUCCESS_STATUS] \
        == []


def test_every_authenticated_route_performs_an_action_of_the_table_or_is_listed_without_one() -> None:
    exercised = {(c.method, c.path) for calls in CALLS.values() for c in calls}
    unaccounted = [
        (e.method, e.path) for e in ENDPOINTS
        if e.auth == "tenant" and (e.method, e.path) not in exercised | set(ROUTES_WITHOUT_ACTION)
    ]
    assert unaccounted == []


def test_every_refusal_of_the_matrix_is_declared_in_its_endpoints_errors() -> None:
    # The OpenAPI document lists each endpoint's declared errors: a refusal it leaves out is undocumented.
    declared = {(e.method, e.path): {error.code for error in e.errors} for e in ENDPOINTS}
    undeclared = sorted({
        (request.method, request.path, refusal_code(action, room_role))
        for action, tenant_role, room_role in matrix() if not allowed(action, tenant_role, room_role)
        for request in CALLS[action]
        if refusal_code(action, room_role) not in declared[(request.method, request.path)]
    })
    assert undeclared == []


@pytest.fixture(scope="module")
def platform_app(settings: Settings, runtime: Runtime, media_store: ObjectStore) -> Starlette:
    """The app as configured with a platform admin key, on the session runtime's pool, appender and NATS."""
    with_key = msgspec.structs.replace(settings, platform_admin_key=PLATFORM_KEY)
    auth = Authenticator(runtime.pool, runtime.auth.signer, platform_admin_key=PLATFORM_KEY)
    return create_app(with_key, runtime=dataclasses.replace(runtime, settings=with_key, auth=auth))


@pytest.fixture
async def api(platform_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app that knows the platform admin key."""
    transport = httpx.ASGITransport(app=platform_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://roomlog.test") as c:
        yield c


async def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    """The JSON body of a set-up request that must succeed."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def dead_letter(runtime: Runtime, tenant: Tenant) -> str:
    """An open dead letter of the tenant, recorded as the webhook sender records one; its id."""
    job = DeliveryJob(
        delivery_id=_unique("dlv"), tenant_id=tenant.tenant_id, webhook_id=_unique("wh"), kind="notification",
        event="notification", user_id="someone", created_at=datetime.now(UTC), payload={}, topic="matrix",
    )
    await record_failure(runtime.appender, job, generation=job.delivery_id, attempts=3, error="boom",
                         at=datetime.now(UTC))
    row = await runtime.pool.fetchval(
        "SELECT id FROM dead_letters WHERE tenant_id = $1 AND delivery_id = $2", tenant.tenant_id, job.delivery_id
    )
    assert row is not None
    return str(row)


async def scene_for(
    api: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, action: str, tenant_role: str, room_role: str | None
) -> Scene:
    """Set up the caller with these roles and whatever the action's requests act on."""
    admin = tenant.as_user("admin")
    caller, victim = _unique(f"caller-{tenant_role}"), _unique("victim")
    if tenant_role != "platform":
        await ok(await api.post("/users", json={"user_id": caller, "display_name": caller, "role": tenant_role},
                                headers=admin))
    await ok(await api.post("/users", json={"user_id": victim, "display_name": "victim"}, headers=admin))
    ids = {"caller": caller, "victim": victim, "tenant_id": tenant.tenant_id, "topic": _unique("topic")}
    if in_room(action):
        # The creator of a room is its admin; the tenant key can act as any user id, platform callers included.
        creator, members = (caller, [victim]) if room_role == "admin" else ("admin", [victim])
        if room_role == "member":
            members.append(caller)
        room = await ok(await api.post("/rooms", json={"type": "group", "members": members},
                                       headers=tenant.as_user(creator)))
        ids["room_id"] = room["room_id"]
        if any("{message_id}" in c.path for c in CALLS[action]):
            ids.update(await _messages_for(api, tenant, room["room_id"], creator, caller, victim, room_role))
    paths = [c.path for c in CALLS[action]]
    if action == "rooms.sync":
        room = await ok(await api.post("/rooms", json={"type": "group", "members": [caller, victim]},
                                       headers=admin))
        ids["own_room"] = room["room_id"]
    if action.startswith("support."):
        ids.update(await _desk_for(api, tenant, action, caller, tenant_role))
    if any(c.ids.get("room_id") == "public_channel" for c in CALLS[action]):
        channel = {"type": "channel", "members": [victim], "visibility": "public"}
        ids["public_channel"] = (await ok(await api.post("/rooms", json=channel, headers=tenant.as_user(victim))))[
            "room_id"]
    if any("{key_id}" in p for p in paths):
        ids["key_id"] = (await ok(await api.post("/api-keys", json={"name": "doomed", "role": "member"},
                                                 headers=admin)))["key_id"]
    if any("{webhook_id}" in p for p in paths):
        hook = {"url": "http://127.0.0.1:9/doomed", "events": ["notification"]}
        ids["webhook_id"] = (await ok(await api.post("/webhooks", json=hook, headers=admin)))["webhook_id"]
    if any("{bot_id}" in p for p in paths):
        bot = {"user_id": _unique("bot"), "display_name": "b", "triggers": ["mention"],
               "delivery": {"nats_subject": "bots.matrix"}}
        ids["bot_id"] = (await ok(await api.post("/bots", json=bot, headers=admin)))["bot_id"]
    if any("{id}" in p for p in paths):
        ids["dead_letter_to_retry"] = await dead_letter(runtime, tenant)
        ids["dead_letter_to_discard"] = await dead_letter(runtime, tenant)
    if any("{media_id}" in p for p in paths):
        ids["uploaded_media"] = await _uploaded_media(api, tenant, caller)
        ids["confirmed_media"] = await _uploaded_media(api, tenant, caller)
        await ok(await api.post(f"/media/{ids['confirmed_media']}/confirm", json={}, headers=tenant.as_user(caller)),
                 200)
    if tenant_role == "platform":
        headers = {"X-API-Key": PLATFORM_KEY, "X-Tenant-Id": tenant.tenant_id, "X-User-Id": caller}
    else:
        headers = tenant.as_user(caller)
    return Scene(tenant, headers, ids)


async def _desk_for(
    api: httpx.AsyncClient, tenant: Tenant, action: str, caller: str, tenant_role: str
) -> dict[str, str]:
    """What the support action's requests name, and no more (each costs requests): a desk agent, the caller's
    own agent profile, a team, a session of the customer (the caller, when a customer) — assigned when the
    action works it — and an ended one."""
    admin = tenant.as_user("admin")
    paths = " ".join(c.path for c in CALLS[action])
    ids: dict[str, str] = {}
    customer = caller if tenant_role == "customer" else _unique("customer")
    ids["customer"] = customer
    if customer != caller:
        await ok(await api.post("/users", json={"user_id": customer, "display_name": "c", "role": "customer"},
                                headers=admin))
    if "{agent_id}" in paths or action == "support.session.work":
        desk_agent = ids["desk_agent"] = _unique("desk")
        await ok(await api.post("/users", json={"user_id": desk_agent, "display_name": "desk", "role": "agent"},
                                headers=admin))
        ids["own_agent"] = caller if tenant_role in ("agent", "admin") else desk_agent
        for agent in {desk_agent, ids["own_agent"]}:
            await ok(await api.put(f"/support/agents/{agent}", json={"max_sessions": 5}, headers=admin), 200)
        if action == "support.session.work":
            await ok(await api.put(f"/support/agents/{desk_agent}/status", json={"status": "available"},
                                   headers=admin), 200)
    if "{team_id}" in paths or action == "support.session.work":
        ids["team_id"] = (await ok(await api.post("/support/teams", json={"name": "team"}, headers=admin)))["team_id"]
    if "{action_id}" in paths:
        ids["builtin_action"] = "action_add_note"
        qa = {"id": _unique("qa"), "name": "doomed", "url": "http://127.0.0.1:9/qa"}
        ids["action_id"] = (await ok(await api.post("/support/quick-actions", json=qa, headers=admin)))["action"]["id"]
    if "{article_id}" in paths:
        article = {"title": "matrix", "body": "matrix text", "status": "published"}
        ids["article_id"] = (await ok(await api.post("/support/kb/articles", json=article, headers=admin)))["id"]
    if action.startswith("support.sla."):
        # A calendar and a policy (24/7) of the tenant; the order request restates every policy before the caller
        # creates one. The caller's PUT moves the policy onto the calendar and then deletes it, so the calendar
        # is unused by the time it is deleted.
        cal = await ok(await api.post("/support/sla/calendars", json=_SLA_CALENDAR, headers=admin))
        pol = await ok(await api.post("/support/sla/policies", json=_sla_policy(), headers=admin))
        ids["calendar_id"], ids["policy_id"] = cal["calendar_id"], pol["policy_id"]
        listed = await ok(await api.get("/support/sla/policies", headers=admin), 200)
        ids["policy_order"] = " ".join(p["policy_id"] for p in reversed(listed))
    if "{session_id}" in paths or action == "support.quick_actions.execute":
        body = {"customer_id": customer}
        ids["session_id"] = (await ok(await api.post("/support/sessions", json=body, headers=admin)))["session_id"]
        if action == "support.session.rate":
            ids["ended_session"] = ids["session_id"]
            await ok(await api.post(f"/support/sessions/{ids['session_id']}/end", json={}, headers=admin), 200)
    if "{ticket_id}" in paths:
        if action == "support.ticket.work":  # a policy for the SLA re-apply to match
            await ok(await api.post("/support/sla/policies", json=_sla_policy(), headers=admin))
        body = {"subject": "s", "description": "d", "customer_id": customer}
        ids["ticket_id"] = (await ok(await api.post("/support/tickets", json=body, headers=admin)))["id"]
    return ids
async def _uploaded_media(api: httpx.AsyncClient, tenant: Tenant, uploader: str) -> str:
    """An upload of `uploader` whose bytes are in the store, not confirmed yet; its media id."""
    ticket = await ok(await api.post("/media/upload-url", headers=tenant.as_user(uploader),
                                     json={"filename": "m.png", "content_type": "image/png", "size": len(TINY_PNG)}))
    async with httpx.AsyncClient() as store:
        assert (await store.put(ticket["upload_url"], content=TINY_PNG, headers=ticket["headers"])).status_code == 200
    return str(ticket["media_id"])


async def _messages_for(
    api: httpx.AsyncClient, tenant: Tenant, room_id: str, creator: str, caller: str, victim: str,
    room_role: str | None,
) -> dict[str, str]:
    """A message of the victim's, and one of the caller's own (sent before leaving when they are no member)."""
    async def sent_by(user: str) -> str:
        body = await ok(await api.post(f"/rooms/{room_id}/messages", json={"content": f"from {user}"},
                                       headers=tenant.as_user(user)))
        return str(body["message_id"])

    if room_role is None:
        await ok(await api.post(f"/rooms/{room_id}/members", json={"user_ids": [caller]},
                                headers=tenant.as_user(creator)), 200)
        own = await sent_by(caller)
        await ok(await api.delete(f"/rooms/{room_id}/members/{caller}", headers=tenant.as_user(creator)), 200)
    else:
        own = await sent_by(caller)
    return {"own_message": own, "victim_message": await sent_by(victim), "emoji": "👍"}


async def snapshot(runtime: Runtime, tenant_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """What a refused request must leave as it was: every stream's seq, and the tenant's mutable tables."""
    queries = {
        "streams": "SELECT stream_id, last_seq FROM streams WHERE tenant_id = $1 ORDER BY 1",
        "rooms": "SELECT room_id, name, metadata FROM rooms WHERE tenant_id = $1 ORDER BY 1",
        "keys": "SELECT key_id, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY 1",
        "webhooks": "SELECT webhook_id FROM webhooks WHERE tenant_id = $1 ORDER BY 1",
        "dead_letters": "SELECT id, status FROM dead_letters WHERE tenant_id = $1 ORDER BY 1",
        "users": "SELECT user_id, role, display_name FROM users WHERE tenant_id = $1 ORDER BY 1",
        "tenant": "SELECT rate_limit, send_rate_limit FROM tenants WHERE tenant_id = $1",
        "media": "SELECT media_id, status FROM media WHERE tenant_id = $1 ORDER BY 1",
        "bots": "SELECT bot_id, triggers, deleted_at FROM bots WHERE tenant_id = $1 ORDER BY 1",
    }
    return {name: [tuple(r) for r in await runtime.pool.fetch(q, tenant_id)] for name, q in queries.items()}


async def call(api: httpx.AsyncClient, request: Call, scene: Scene) -> httpx.Response:
    """Make one of an action's requests as the scene's caller."""
    params = request.params(scene) if callable(request.params) else request.params
    return await api.request(request.method, request.url(scene), json=request.body(scene) if request.body else None,
                             params=params, headers=scene.headers)


REFUSED = [(a, t, r) for a, t, r in matrix() if not allowed(a, t, r)]


@pytest.mark.parametrize(("action", "tenant_role", "room_role"), matrix(),
                         ids=[f"{a}-{t}-room:{r}" for a, t, r in matrix()])
async def test_route_allows_exactly_what_the_action_table_allows(
    api: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, action: str, tenant_role: str, room_role: str | None
) -> None:
    scene = await scene_for(api, runtime, tenant, action, tenant_role, room_role)
    permitted = allowed(action, tenant_role, room_role)
    wrong = []
    for request in CALLS[action]:
        response = await call(api, request, scene)
        if permitted:
            expected: tuple[int, str | None] = (SUCCESS_STATUS[(request.method, request.path)], None)
        else:
            expected = (403, refusal_code(action, room_role))
        code = response.json().get("error", {}).get("code") if response.status_code >= 400 else None
        if (response.status_code, code) != expected:
            wrong.append(f"{request.method} {request.path}: got {response.status_code} {response.text[:200]}, "
                         f"expected {expected}")
    assert wrong == []


@pytest.mark.parametrize(("action", "tenant_role", "room_role"), REFUSED,
                         ids=[f"{a}-{t}-room:{r}" for a, t, r in REFUSED])
async def test_refused_request_changes_nothing(
    api: httpx.AsyncClient, runtime: Runtime, tenant: Tenant, action: str, tenant_role: str, room_role: str | None
) -> None:
    scene = await scene_for(api, runtime, tenant, action, tenant_role, room_role)
    before = await snapshot(runtime, tenant.tenant_id)
    statuses = [(await call(api, request, scene)).status_code for request in CALLS[action]]
    assert set(statuses) == {403}
    assert await snapshot(runtime, tenant.tenant_id) == before
