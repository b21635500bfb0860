"""The support desk over HTTP: agents, teams, customers, sessions, routing records and their errors."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.conftest import Tenant
from tests.service.test_search import caught_up


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def user(client: httpx.AsyncClient, tenant: Tenant, user_id: str, role: str) -> None:
    await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id.title(), "role": role},
                               headers=tenant.as_user("admin")), 201)


async def agent(client: httpx.AsyncClient, tenant: Tenant, agent_id: str, *, max_sessions: int = 2,
                skills: list[str] | None = None, status: str = "available") -> None:
    await user(client, tenant, agent_id, "agent")
    await ok(await client.put(f"/support/agents/{agent_id}", json={"max_sessions": max_sessions,
                                                                   "skills": skills or [], "languages": ["en"]},
                              headers=tenant.as_user("admin")))
    await ok(await client.put(f"/support/agents/{agent_id}/status", json={"status": status},
                              headers=tenant.as_user(agent_id)))


async def start(client: httpx.AsyncClient, tenant: Tenant, customer: str, **body: Any) -> dict[str, Any]:
    return dict(await ok(await client.post("/support/sessions", json={"initial_message": "help", **body},
                                           headers=tenant.as_user(customer)), 201))


async def test_a_session_is_queued_without_agents_and_assigned_the_moment_an_agent_becomes_available(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await user(client, tenant, "cust", "customer")
    session = await start(client, tenant, "cust", context={"order_id": "o1"}, priority="high")
    assert (session["status"], session["assigned_agent"], session["queue_position"]) == ("queued", None, 1)
    assert session["estimated_wait_minutes"] == 5  # one session ahead, the default 300 s handle time, no agent
    await agent(client, tenant, "sarah")
    sid = session["session_id"]
    got = await ok(await client.get(f"/support/sessions/{sid}", headers=tenant.as_user("cust")))
    assert got["status"] == "active"
    assert got["assigned_agent"] == {"id": "sarah", "name": "Sarah", "avatar_url": None}
    assert got["context"] == {"order_id": "o1"}
    assert [(m["sender"], m["content"]) for m in got["messages"]] == [("customer", "help")]
    status = await ok(await client.get("/support/agents/sarah/status", headers=tenant.as_user("sarah")))
    assert (status["status"], status["active_sessions"], status["max_sessions"]) == ("available", 1, 2)


async def test_messages_flow_both_ways_through_the_room_then_end_and_rating(
    client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool
) -> None:
    await agent(client, tenant, "sam", max_sessions=1)
    await user(client, tenant, "cust", "customer")
    sid = (await start(client, tenant, "cust"))["session_id"]
    reply = await ok(await client.post(f"/support/sessions/{sid}/messages", json={"content": "hi, I am Sam"},
                                       headers=tenant.as_user("sam")), 201)
    assert reply["sender"] == "agent"
    await ok(await client.post(f"/support/sessions/{sid}/messages", json={"content": "thanks"},
                               headers=tenant.as_user("cust")), 201)
    got = await ok(await client.get(f"/support/sessions/{sid}", headers=tenant.as_user("cust")))
    assert [m["sender"] for m in got["messages"]] == ["customer", "agent", "customer"]
    room = await ok(await client.get(f"/rooms/{got['room_id']}/messages", headers=tenant.as_user("cust")))
    assert [m["content"] for m in room] == ["help", "hi, I am Sam", "thanks"]
    ended = await ok(await client.post(f"/support/sessions/{sid}/end", json={"resolution": "resolved",
                                                                             "tags": ["quick"]},
                                       headers=tenant.as_user("sam")))
    assert ended["status"] == "resolved"
    closed = await client.post(f"/support/sessions/{sid}/messages", json={"content": "more"},
                               headers=tenant.as_user("cust"))
    assert (closed.status_code, closed.json()["error"]["code"]) == (409, "SESSION_CLOSED")
    by_room = await client.post(f"/rooms/{got['room_id']}/messages", json={"content": "more"},
                                headers=tenant.as_user("cust"))
    assert (by_room.status_code, by_room.json()["error"]["code"]) == (403, "NOT_A_MEMBER")  # the room closed too
    rated = await ok(await client.post(f"/support/sessions/{sid}/rating", json={"score": 5},
                                       headers=tenant.as_user("cust")))
    assert rated["rating"] == 5
    again = await client.post(f"/support/sessions/{sid}/rating", json={"score": 1}, headers=tenant.as_user("cust"))
    assert (again.status_code, again.json()["error"]["code"]) == (409, "ALREADY_RATED")
    await caught_up(pool, "support_analytics")  # metrics_today come from the analytics facts
    status = await ok(await client.get("/support/agents/sam/status", headers=tenant.as_user("sam")))
    assert status["metrics_today"]["sessions_handled"] == 1
    assert status["metrics_today"]["resolution_rate"] == 100.0


async def test_a_wrong_transition_is_409_with_the_allowed_actions(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await user(client, tenant, "cust", "customer")
    sid = (await start(client, tenant, "cust"))["session_id"]
    held = await client.post(f"/support/sessions/{sid}/resume", headers=tenant.as_user("admin"))
    assert held.status_code == 409
    assert held.json()["error"]["code"] == "INVALID_TRANSITION"
    assert held.json()["error"]["allowed"] == ["end", "escalate", "message", "transfer"]


async def test_ending_a_session_routes_the_next_waiting_one_to_the_freed_agent(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await agent(client, tenant, "solo", max_sessions=1)
    for c in ("c1", "c2"):
        await user(client, tenant, c, "customer")
    first = await start(client, tenant, "c1")
    second = await start(client, tenant, "c2")
    assert (first["status"], second["status"]) == ("active", "queued")
    full = await ok(await client.get("/support/agents/solo/status", headers=tenant.as_user("solo")))
    assert full["status"] == "busy"
    await ok(await client.post(f"/support/sessions/{first['session_id']}/end", json={}, headers=tenant.as_user("c1")))
    now = await ok(await client.get(f"/support/sessions/{second['session_id']}", headers=tenant.as_user("c2")))
    assert (now["status"], now["assigned_agent"]["id"]) == ("active", "solo")


async def test_the_routing_record_names_the_policy_and_why_each_other_agent_was_passed_over(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await agent(client, tenant, "away1", status="away")
    await agent(client, tenant, "generalist", skills=[])
    await agent(client, tenant, "biller", skills=["billing"])
    await user(client, tenant, "cust", "customer")
    sid = (await start(client, tenant, "cust", skills=["billing"]))["session_id"]
    record = await ok(await client.get(f"/support/sessions/{sid}/routing", headers=tenant.as_user("admin")))
    [assignment] = record["assignments"]
    assert (assignment["agent_id"], assignment["policy_version"]) == ("biller", "spare_capacity/1")
    assert {c["agent_id"]: c["reasons"] for c in assignment["candidates"]} == {
        "away1": ["offline", "missing_skill"], "biller": ["chosen"], "generalist": ["missing_skill"],
    }
    refused = await client.get(f"/support/sessions/{sid}/routing", headers=tenant.as_user("cust"))
    assert refused.status_code == 403


async def test_a_customer_sees_only_its_own_sessions(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for c in ("mine", "theirs"):
        await user(client, tenant, c, "customer")
    theirs = await start(client, tenant, "theirs")
    await start(client, tenant, "mine")
    other = await client.get(f"/support/sessions/{theirs['session_id']}", headers=tenant.as_user("mine"))
    assert (other.status_code, other.json()["error"]["code"]) == (404, "SESSION_NOT_FOUND")
    write = await client.post(f"/support/sessions/{theirs['session_id']}/messages", json={"content": "x"},
                              headers=tenant.as_user("mine"))
    assert write.status_code == 404
    listed = await ok(await client.get("/support/sessions", headers=tenant.as_user("mine")))
    assert {s["customer"]["id"] for s in listed} == {"mine"}
    assert await ok(await client.get("/support/sessions", params={"customer_id": "theirs"},
                                     headers=tenant.as_user("mine"))) == []
    assert (await client.get("/support/agents", headers=tenant.as_user("mine"))).status_code == 403
    assert (await client.post("/rooms", json={"type": "group"}, headers=tenant.as_user("mine"))).status_code == 403


async def test_transfer_to_a_team_waits_for_a_member_and_keeps_notes_internal(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await agent(client, tenant, "first", max_sessions=1)
    await user(client, tenant, "cust", "customer")
    sid = (await start(client, tenant, "cust"))["session_id"]
    await ok(await client.post("/support/teams", json={"team_id": "billing", "name": "Billing"},
                               headers=tenant.as_user("admin")), 201)
    moved = await ok(await client.post(f"/support/sessions/{sid}/transfer",
                                       json={"target_type": "team", "target_id": "billing", "notes": "refund"},
                                       headers=tenant.as_user("first")))
    assert (moved["status"], moved["team_id"]) == ("transferred", "billing")
    await agent(client, tenant, "bill")
    await ok(await client.patch("/support/teams/billing", json={"members": ["bill"]}, headers=tenant.as_user("admin")))
    got = await ok(await client.get(f"/support/sessions/{sid}", headers=tenant.as_user("cust")))
    assert (got["status"], got["assigned_agent"]["id"]) == ("active", "bill")
    assert "refund" not in str(got)
    unknown = await client.post(f"/support/sessions/{sid}/transfer", json={"target_type": "team", "target_id": "nope"},
                                headers=tenant.as_user("bill"))
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "TEAM_NOT_FOUND")


async def test_escalation_raises_priority_and_routes_to_the_levels_team(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await user(client, tenant, "cust", "customer")
    await agent(client, tenant, "tier1", max_sessions=1)
    sid = (await start(client, tenant, "cust", priority="low"))["session_id"]
    await agent(client, tenant, "boss")
    await ok(await client.post("/support/teams", json={"team_id": "sup", "name": "Supervisors", "members": ["boss"],
                                                       "escalation_level": "supervisor"},
                               headers=tenant.as_user("admin")), 201)
    got = await ok(await client.post(f"/support/sessions/{sid}/escalate", json={"level": "supervisor"},
                                     headers=tenant.as_user("tier1")))
    assert (got["status"], got["priority"], got["assigned_agent"]["id"]) == ("active", "high", "boss")


async def test_bad_input_is_a_400_and_unknown_sessions_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    await user(client, tenant, "cust", "customer")
    bad = await client.post("/support/sessions", json={"priority": "whenever"}, headers=tenant.as_user("cust"))
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "priority")
    no_customer = await client.post("/support/sessions", json={}, headers=tenant.as_user("admin"))
    assert (no_customer.status_code, no_customer.json()["error"]["field"]) == (400, "customer_id")
    missing = await client.get("/support/sessions/sess_nope", headers=tenant.as_user("admin"))
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "SESSION_NOT_FOUND")
    status = await client.get("/support/sessions", params={"status": "sleeping"}, headers=tenant.as_user("admin"))
    assert status.status_code == 400
    rating = await client.post("/support/sessions/sess_nope/rating", json={"score": 9}, headers=tenant.as_user("cust"))
    assert (rating.status_code, rating.json()["error"]["field"]) == (400, "score")


async def test_replaying_the_desk_with_the_same_policy_reproduces_every_assignment_and_another_policy_reports_its_own(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await agent(client, tenant, "ann", max_sessions=3)
    await agent(client, tenant, "bo", max_sessions=1)
    sessions = []
    for n in range(4):
        await user(client, tenant, f"c{n}", "customer")
        sessions.append((await start(client, tenant, f"c{n}"))["session_id"])
    await ok(await client.post(f"/support/sessions/{sessions[0]}/end", json={}, headers=tenant.as_user("c0")))
    same = await ok(await client.post("/support/routing/replay", json={"policy": "spare_capacity"},
                                      headers=tenant.as_user("admin")))
    assert (same["sessions"], same["assigned"], same["same_as_recorded"]) == (4, 4, 4)
    assert same["per_agent"] == [{"agent_id": "ann", "assignments": 3}, {"agent_id": "bo", "assignments": 1}]
    other = await ok(await client.post("/support/routing/replay", json={"policy": "round_robin"},
                                       headers=tenant.as_user("admin")))
    assert other["policy_version"] == "round_robin/1"
    assert sum(a["assignments"] for a in other["per_agent"]) == other["assigned"] == 4
    refused = await client.post("/support/routing/replay", json={"policy": "round_robin"},
                                headers=tenant.as_user("ann"))
    assert refused.status_code == 403


async def test_a_tenant_that_refuses_without_agents_gets_400_until_one_is_available_and_another_still_queues(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    admin = tenant.as_user("admin")
    default = await ok(await client.get("/support/settings", headers=admin))
    assert default == {"refuse_without_agents": False, "inherited": True, "ticket_auto_close_days": 4,
                       "set_by": None, "updated_at": None}
    await user(client, tenant, "cust", "customer")
    await user(client, tenant, "sam", "agent")
    refused = await client.put("/support/settings", json={"refuse_without_agents": True},
                               headers=tenant.as_user("sam"))
    assert refused.status_code == 403
    assert (await client.put("/support/settings", json={"refuse_without_agents": "yes"}, headers=admin)).status_code \
        == 400
    set_ = await ok(await client.put("/support/settings", json={"refuse_without_agents": True}, headers=admin))
    assert (set_["refuse_without_agents"], set_["inherited"], set_["set_by"]) == (True, False, "admin")
    assert await ok(await client.get("/support/settings", headers=tenant.as_user("sam"))) == set_
    # No eligible agent: one away, and one available but without the skill the session asks for.
    await agent(client, tenant, "away", skills=["billing"], status="away")
    await agent(client, tenant, "plain")
    response = await client.post("/support/sessions", json={"initial_message": "help", "skills": ["billing"]},
                                 headers=tenant.as_user("cust"))
    assert (response.status_code, response.json()["error"]["code"]) == (400, "NO_AGENTS_AVAILABLE")
    assert await ok(await client.get("/support/sessions", headers=admin)) == []  # nothing was written
    await agent(client, tenant, "bill", skills=["billing"])
    session = await start(client, tenant, "cust", skills=["billing"])
    assert (session["status"], session["assigned_agent"]["id"]) == ("active", "bill")
    # Another tenant of the same service never set it: it queues as the service's default says.
    await user(client, other_tenant, "cust", "customer")
    assert (await ok(await client.get("/support/settings", headers=other_tenant.as_user("admin"))))["inherited"]
    queued = await start(client, other_tenant, "cust", skills=["billing"])
    assert (queued["status"], queued["assigned_agent"]) == ("queued", None)
