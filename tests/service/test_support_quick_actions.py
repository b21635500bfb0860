"""Quick actions under /support: the registry, built-in actions on sessions, integrator calls, exactly once."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.consumers.webhooks import sign
from tests.conftest import Tenant, error_of, serving

SECRET = "integration-secret-0123456789"


async def desk(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, str]:
    """An agent, a customer and a session of that customer; their ids."""
    admin = tenant.as_user("admin")
    for user_id, role in (("qa-agent", "agent"), ("qa-cust", "customer")):
        response = await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                     headers=admin)
        assert response.status_code == 201, response.text
    session = await client.post("/support/sessions", json={"customer_id": "qa-cust"}, headers=admin)
    assert session.status_code == 201, session.text
    return {"session_id": session.json()["session_id"]}


async def run(client: httpx.AsyncClient, tenant: Tenant, action: str, body: dict[str, Any], *, user: str = "admin",
              key: str | None = None) -> httpx.Response:
    headers = tenant.as_user(user) | ({"Idempotency-Key": key} if key else {})
    return await client.post(f"/support/quick-actions/{action}/execute", json=body, headers=headers)


async def seq_of(pool: asyncpg.Pool, stream_id: str) -> int:
    return int(await pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", stream_id) or 0)


async def test_built_in_actions_act_on_the_session_once_per_key(
        client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    ids = await desk(client, tenant)
    session_id = ids["session_id"]
    listed = (await client.get("/support/quick-actions", headers=tenant.as_user("qa-agent"))).json()["actions"]
    assert {a["id"] for a in listed} >= {"action_add_note", "action_set_status", "action_assign",
                                         "action_canned_reply", "action_add_credit"}
    assert error_of(await client.get("/support/quick-actions", headers=tenant.as_user("qa-cust")), 403)

    # A dry run says what would change and records nothing.
    before = await seq_of(pool, session_id)
    dry = (await run(client, tenant, "action_canned_reply",
                     {"session_id": session_id, "context": {"text": "Thanks for waiting!"}, "dry_run": True})).json()
    assert dry["dry_run"] is True and dry["execution_id"] is None and "send a reply" in dry["changes"][0]
    assert await seq_of(pool, session_id) == before

    # Executed twice with one key: one reply in the session, the second answer is the recorded one.
    body = {"session_id": session_id, "context": {"text": "Thanks for waiting!"}}
    first = await run(client, tenant, "action_canned_reply", body, key="reply-1")
    again = await run(client, tenant, "action_canned_reply", body, key="reply-1")
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers.get("x-idempotent-replay") == "true"
    assert again.json() == first.json() and first.json()["success"] is True
    detail = (await client.get(f"/support/sessions/{session_id}", headers=tenant.as_user("admin"))).json()
    assert [m["content"] for m in detail["messages"]].count("Thanks for waiting!") == 1
    kinds = await pool.fetch("SELECT type FROM events WHERE stream_id = $1 AND type LIKE 'support.quick_action.%'"
                             " ORDER BY seq", session_id)
    assert [k["type"] for k in kinds] == ["support.quick_action.executed", "support.quick_action.completed"]

    # Store credit: admins only; amounts checked; the ledger adds up.
    credit = {"session_id": session_id, "context": {"amount": "25.99", "reason": "missing item"}}
    assert error_of(await run(client, tenant, "action_add_credit", credit, user="qa-agent"), 403)["code"] == "FORBIDDEN"
    added = (await run(client, tenant, "action_add_credit", credit)).json()
    assert added["result"] == {"customer_id": "qa-cust", "amount": "25.99", "currency": "USD", "balance": "25.99"}
    more = await run(client, tenant, "action_add_credit", {"session_id": session_id, "context": {"amount": 4.01}})
    assert more.json()["result"]["balance"] == "30.00"
    for amount in ("-1", "1.234", "lots", True, 10**9):
        bad = await run(client, tenant, "action_add_credit", {"session_id": session_id, "context": {"amount": amount}})
        assert error_of(bad, 400)["field"] == "context.amount", amount
    own = (await client.get("/support/customers/qa-cust/credit", headers=tenant.as_user("qa-cust"))).json()
    assert own["balances"] == {"USD": "30.00"} and [e["amount"] for e in own["entries"]] == ["4.01", "25.99"]
    others = await client.get("/support/customers/someone-else/credit", headers=tenant.as_user("admin"))
    assert error_of(others, 404)["code"] == "USER_NOT_FOUND"

    # Missing context names the key; the status action goes through the session's own rules.
    missing = await run(client, tenant, "action_set_status", {"session_id": session_id, "context": {}})
    assert error_of(missing, 400)["field"] == "context.status"
    wrong = await run(client, tenant, "action_set_status", {"session_id": session_id, "context": {"status": "on_hold"}})
    assert error_of(wrong, 409)["code"] == "INVALID_TRANSITION"  # a queued session cannot be held
    ended = await run(client, tenant, "action_set_status",
                      {"session_id": session_id, "context": {"status": "resolved"}})
    assert ended.json()["result"] == {"status": "resolved"}
    note = await run(client, tenant, "action_add_note", {"session_id": session_id, "context": {"note": "VIP"}})
    assert note.json()["success"] is True
    assert error_of(await run(client, tenant, "action_nope", {"session_id": session_id}), 404)["code"] == \
        "QUICK_ACTION_NOT_FOUND"
    assert error_of(await run(client, tenant, "action_add_note", {"context": {"note": "x"}}), 400)["field"] == \
        "session_id"


async def test_integrator_actions_get_a_signed_call_and_failures_are_recorded(
        client: httpx.AsyncClient, tenant: Tenant, pool: asyncpg.Pool) -> None:
    ids = await desk(client, tenant)
    calls: list[dict[str, Any]] = []

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        expected = sign(SECRET, int(request.headers["x-roomlog-timestamp"]), body)
        assert request.headers["x-roomlog-signature"] == expected
        payload = json.loads(body)
        calls.append(payload)
        if payload["context"]["order_id"] == "broken":
            return JSONResponse({"message": "order system down"}, status_code=500)
        return JSONResponse({"result": {"refund_id": "ref_1", "amount": payload["context"]["amount"]},
                             "message": "Refund initiated"})

    integrator = Starlette(routes=[Route("/refund", endpoint, methods=["POST"])])
    async for host in serving(integrator):
        admin = tenant.as_user("admin")
        registered = await client.post("/support/quick-actions", headers=admin, json={
            "id": "action_refund", "name": "Process Refund", "url": f"http://{host}/refund", "secret": SECRET,
            "required_context": ["order_id", "amount"], "permissions": ["agent", "admin"]})
        assert registered.status_code == 201, registered.text
        assert registered.json()["secret"] == SECRET
        again = await client.post("/support/quick-actions", headers=admin,
                                  json={"id": "action_refund", "name": "x", "url": f"http://{host}/x"})
        assert error_of(again, 409)["code"] == "QUICK_ACTION_EXISTS"
        by_agent = await client.post("/support/quick-actions", headers=tenant.as_user("qa-agent"),
                                     json={"id": "mine", "name": "x", "url": f"http://{host}/x"})
        assert error_of(by_agent, 403)["code"] == "NOT_TENANT_ADMIN"
        listed = (await client.get("/support/quick-actions", headers=admin)).json()["actions"]
        assert {"id": "action_refund", "kind": "integration", "required_context": ["order_id", "amount"]}.items() <= \
            next(a for a in listed if a["id"] == "action_refund").items()

        body = {"session_id": ids["session_id"], "context": {"order_id": "ord_1", "amount": 25.99}}
        done = await run(client, tenant, "action_refund", body, user="qa-agent", key="refund-1")
        assert done.status_code == 200, done.text
        assert done.json()["result"] == {"refund_id": "ref_1", "amount": 25.99}
        assert done.json()["message"] == "Refund initiated"
        repeated = await run(client, tenant, "action_refund", body, user="qa-agent", key="refund-1")
        assert repeated.json() == done.json() and len(calls) == 1
        assert calls[0]["execution_id"] == done.json()["execution_id"] and calls[0]["session_id"] == ids["session_id"]

        missing = await run(client, tenant, "action_refund", {"session_id": ids["session_id"],
                                                              "context": {"order_id": "ord_1"}})
        assert error_of(missing, 400)["field"] == "context.amount"
        failing = {"session_id": ids["session_id"], "context": {"order_id": "broken", "amount": 1}}
        failed = await run(client, tenant, "action_refund", failing, key="refund-2")
        assert error_of(failed, 502)["code"] == "QUICK_ACTION_FAILED"
        assert "order system down" in error_of(failed)["message"]
        recorded = await run(client, tenant, "action_refund", failing, key="refund-2")
        assert recorded.json()["success"] is False and len(calls) == 2

        assert (await client.delete("/support/quick-actions/action_refund", headers=admin)).status_code == 200
        assert error_of(await run(client, tenant, "action_refund", body), 404)["code"] == "QUICK_ACTION_NOT_FOUND"
    statuses = await pool.fetch(
        "SELECT data->>'status' AS status FROM events WHERE stream_id = $1 AND type = 'support.quick_action.completed'"
        " ORDER BY seq", ids["session_id"])
    assert [r["status"] for r in statuses] == ["succeeded", "failed"]


async def test_built_in_actions_act_on_a_ticket_through_its_rules_and_are_recorded_on_it(
        client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, pool: asyncpg.Pool) -> None:
    ids = await desk(client, tenant)
    ticket = (await client.post("/support/tickets", json={"subject": "Broken", "description": "It broke"},
                                headers=tenant.as_user("qa-cust"))).json()
    tid = ticket["id"]
    listed = (await client.get("/support/quick-actions", headers=tenant.as_user("qa-agent"))).json()["actions"]
    targets = {a["id"]: a["targets"] for a in listed}
    assert targets["action_set_priority"] == ["ticket"] and targets["action_add_note"] == ["session", "ticket"]
    assert targets["action_add_credit"] == ["session"]

    # Exactly one target, and one the action acts on.
    both = await run(client, tenant, "action_add_note", {**ids, "ticket_id": tid, "context": {"note": "n"}})
    assert error_of(both, 400)["field"] == "ticket_id"
    assert error_of(await run(client, tenant, "action_add_note", {"context": {"note": "n"}}), 400)["field"] \
        == "session_id"
    credit = await run(client, tenant, "action_add_credit", {"ticket_id": tid, "context": {"amount": 5}})
    assert error_of(credit, 400)["field"] == "ticket_id"
    tagged_session = await run(client, tenant, "action_add_tag", {**ids, "context": {"tag": "vip"}})
    assert error_of(tagged_session, 400)["field"] == "session_id"
    foreign = await run(client, other_tenant, "action_add_note", {"ticket_id": tid, "context": {"note": "n"}})
    assert error_of(foreign, 404)["code"] == "TICKET_NOT_FOUND"
    # The ticket's rules apply, in a dry run too: solved needs an assignee.
    before = await seq_of(pool, tid)
    refused = await run(client, tenant, "action_set_status",
                        {"ticket_id": tid, "context": {"status": "solved"}, "dry_run": True})
    assert error_of(refused, 409)["code"] == "INVALID_TRANSITION"
    assert await seq_of(pool, tid) == before

    steps = [("action_assign", {"agent_id": "qa-agent"}), ("action_set_priority", {"priority": "urgent"}),
             ("action_add_tag", {"tag": "vip"}), ("action_add_note", {"note": "call them back"}),
             ("action_canned_reply", {"text": "We are on it"}), ("action_set_status", {"status": "solved"})]
    for action, context in steps:
        done = await run(client, tenant, action, {"ticket_id": tid, "context": context}, user="qa-agent",
                         key=f"{tid}-{action}")
        assert done.status_code == 200 and done.json()["success"] is True, done.text
    again = await run(client, tenant, "action_add_tag", {"ticket_id": tid, "context": {"tag": "vip"}},
                      user="qa-agent", key=f"{tid}-action_add_tag")
    assert again.headers.get("x-idempotent-replay") == "true"

    staff = (await client.get(f"/support/tickets/{tid}", headers=tenant.as_user("qa-agent"))).json()
    assert (staff["status"], staff["priority"], staff["assigned_to"]["id"], staff["tags"]) == (
        "solved", "urgent", "qa-agent", ["vip"])
    assert [n["content"] for n in staff["notes"]] == ["call them back"]
    assert [(c["content"], c["public"]) for c in staff["comments"]] == [("We are on it", True)]
    assert staff["first_response_at"] is not None
    mine = (await client.get(f"/support/tickets/{tid}", headers=tenant.as_user("qa-cust"))).json()
    assert mine["notes"] == [] and "call them back" not in json.dumps(mine)
    kinds = [r["type"] for r in await pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq", tid)]
    assert kinds.count("support.quick_action.executed") == kinds.count("support.quick_action.completed") == 6
    # A closed ticket takes no more actions.
    closed = await client.put(f"/support/tickets/{tid}", json={"status": "closed"}, headers=tenant.as_user("qa-agent"))
    assert closed.status_code == 200, closed.text
    late = await run(client, tenant, "action_add_note", {"ticket_id": tid, "context": {"note": "n"}})
    assert error_of(late, 409)["code"] == "TICKET_CLOSED"
