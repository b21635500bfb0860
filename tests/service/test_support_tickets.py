"""Support tickets over HTTP: numbers, the status machine, comments, internal notes, escalation, listing, auto-close."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from projections.support_tickets import TicketCount, TicketFilter, list_tickets
from service.commands.support.auto_close import close_solved
from service.domain.support.tickets import STATUSES
from service.runtime import Runtime
from tests.conftest import Tenant, error_of

# What an explicit status change may do from each status (with an assignee): the README's table.
ALLOWED = {
    "new": {"open", "pending", "on_hold", "solved"},
    "open": {"pending", "on_hold", "solved"},
    "pending": {"open", "on_hold", "solved"},
    "on_hold": {"open", "pending", "solved"},
    "solved": {"open", "closed"},
    "closed": set(),
}
# A path from a new, assigned ticket to each status.
PATH_TO = {"new": [], "open": ["open"], "pending": ["pending"], "on_hold": ["on_hold"], "solved": ["solved"],
           "closed": ["solved", "closed"]}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def desk(client: httpx.AsyncClient, tenant: Tenant) -> Tenant:
    """The tenant with agents sam and kim and customers cust and other."""
    for user_id, role in [("sam", "agent"), ("kim", "agent"), ("cust", "customer"), ("other", "customer")]:
        await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id.title(), "role": role},
                                   headers=tenant.as_user("admin")), 201)
    return tenant


async def file(client: httpx.AsyncClient, tenant: Tenant, *, as_user: str = "cust", **body: Any) -> dict[str, Any]:
    fields = {"subject": "Missing item", "description": "My order was missing the side salad", **body}
    return dict(await ok(await client.post("/support/tickets", json=fields, headers=tenant.as_user(as_user)), 201))


async def put(client: httpx.AsyncClient, tenant: Tenant, ticket_id: str, **body: Any) -> httpx.Response:
    return await client.put(f"/support/tickets/{ticket_id}", json=body, headers=tenant.as_user("sam"))


async def test_a_customer_files_a_ticket_with_the_seeds_shape_and_a_readable_number(
    client: httpx.AsyncClient, desk: Tenant
) -> None:
    ticket = await file(client, desk, priority="high", category="order_issue", tags=["missing_item"],
                        related_order_id="ord_xyz")
    assert ticket["number"].startswith("TKT-") and ticket["number"].endswith("-0001")
    assert (ticket["status"], ticket["priority"], ticket["category"], ticket["tags"]) == (
        "new", "high", "order_issue", ["missing_item"])
    assert ticket["customer"] == {"id": "cust", "name": "Cust", "avatar_url": None}
    assert ticket["assigned_to"] is None and ticket["sla"] is None
    assert ticket["related"]["order_id"] == "ord_xyz"
    assert [a["action"] for a in ticket["activities"]] == ["created"]
    second = await file(client, desk, as_user="sam", customer_id="other")
    assert second["number"].endswith("-0002") and second["customer"]["id"] == "other"


async def test_numbers_stay_gapless_when_many_tickets_are_filed_at_once(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    filed = await asyncio.gather(*(file(client, desk, subject=f"race {i}") for i in range(12)))
    numbers = sorted(int(t["number"].rsplit("-", 1)[1]) for t in filed)
    assert numbers == list(range(1, 13))
    counter = await runtime.pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1",
                                          f"tickets:{desk.tenant_id}")
    assert counter == 12


async def test_filing_refuses_a_customer_for_another_and_a_non_customer_as_customer(
    client: httpx.AsyncClient, desk: Tenant
) -> None:
    body = {"subject": "s", "description": "d"}
    refused = await client.post("/support/tickets", json={**body, "customer_id": "other"}, headers=desk.as_user("cust"))
    assert error_of(refused, 403)["code"] == "FORBIDDEN"
    wrong = await client.post("/support/tickets", json={**body, "customer_id": "kim"}, headers=desk.as_user("sam"))
    assert error_of(wrong, 400)["field"] == "customer_id"
    blank = await client.post("/support/tickets", json={"subject": " ", "description": "d"},
                              headers=desk.as_user("cust"))
    assert error_of(blank, 400)["field"] == "subject"


@pytest.mark.parametrize("source", STATUSES)
async def test_every_status_change_over_the_api_is_allowed_or_refused_as_the_table_says(
    client: httpx.AsyncClient, desk: Tenant, source: str
) -> None:
    for target in STATUSES:
        ticket_id = (await file(client, desk))["id"]
        if source != "new":
            await ok(await put(client, desk, ticket_id, assigned_to="sam"))
        for step in PATH_TO[source]:
            await ok(await put(client, desk, ticket_id, status=step))
        if source == "new":  # assigning a new ticket would open it: give the assignee without a status change
            answer = await put(client, desk, ticket_id, status=target, assigned_to="sam")
        else:
            answer = await put(client, desk, ticket_id, status=target)
        if source == "closed":
            assert error_of(answer, 409)["code"] == "TICKET_CLOSED", target
        elif (target == source and source != "new") or target in ALLOWED[source]:
            assert (await ok(answer))["status"] == target, (source, target)
        else:
            error = error_of(answer, 409)
            assert error["code"] == "INVALID_TRANSITION", (source, target)
            assert error["allowed"] == [s for s in STATUSES if s in ALLOWED[source]], (source, target)


async def test_assigning_a_new_ticket_opens_it_and_solved_needs_an_assignee(
    client: httpx.AsyncClient, desk: Tenant
) -> None:
    ticket_id = (await file(client, desk))["id"]
    refused = error_of(await put(client, desk, ticket_id, status="solved"), 409)
    assert (refused["code"], refused["allowed"]) == ("INVALID_TRANSITION", ["open", "pending", "on_hold"])
    opened = await ok(await put(client, desk, ticket_id, assigned_to="kim", priority="urgent"))
    assert (opened["status"], opened["assigned_to"]["id"], opened["priority"]) == ("open", "kim", "urgent")
    assigned = opened["activities"][-1]
    assert (assigned["action"], assigned["agent"], assigned["reason"]) == ("assigned", "kim", "assigned")
    not_staff = await put(client, desk, ticket_id, assigned_to="cust")
    assert error_of(not_staff, 400)["field"] == "assigned_to"
    bad = await client.put(f"/support/tickets/{ticket_id}", json={"status": "reopened"}, headers=desk.as_user("sam"))
    assert error_of(bad, 400)["field"] == "status"


@pytest.mark.parametrize("waiting", ["pending", "on_hold", "solved"])
async def test_a_customer_comment_reopens_a_waiting_ticket_and_an_agent_reply_does_not(
    client: httpx.AsyncClient, desk: Tenant, waiting: str
) -> None:
    ticket_id = (await file(client, desk))["id"]
    await ok(await put(client, desk, ticket_id, assigned_to="sam", status=waiting))
    replied = await ok(await client.post(f"/support/tickets/{ticket_id}/comments", json={"content": "On it"},
                                         headers=desk.as_user("sam")), 201)
    assert replied["status"] == waiting and replied["first_response_at"] is not None
    reopened = await ok(await client.post(f"/support/tickets/{ticket_id}/comments", json={"content": "Any news?"},
                                          headers=desk.as_user("cust")), 201)
    assert reopened["status"] == "open"
    assert [(c["author"]["type"], c["content"]) for c in reopened["comments"]] == [
        ("agent", "On it"), ("customer", "Any news?")]
    last = reopened["activities"][-1]
    assert (last["action"], last["status"], last["reason"]) == ("status_changed", "open", "requester_comment")


async def test_closed_is_final_and_a_follow_up_ticket_links_it(client: httpx.AsyncClient, desk: Tenant) -> None:
    ticket_id = (await file(client, desk))["id"]
    await ok(await put(client, desk, ticket_id, assigned_to="sam", status="solved"))
    open_follow_up = await client.post("/support/tickets", json={"subject": "s", "description": "d",
                                                                 "follow_up_of": ticket_id},
                                       headers=desk.as_user("cust"))
    assert error_of(open_follow_up, 400)["field"] == "follow_up_of"
    await ok(await put(client, desk, ticket_id, status="closed"))
    for path, body, user in [("comments", {"content": "again"}, "cust"), ("notes", {"content": "n"}, "sam"),
                             ("escalate", {"escalation_type": "tier_2"}, "sam")]:
        answer = await client.post(f"/support/tickets/{ticket_id}/{path}", json=body, headers=desk.as_user(user))
        assert error_of(answer, 409)["code"] == "TICKET_CLOSED", path
    assert error_of(await put(client, desk, ticket_id, priority="low"), 409)["code"] == "TICKET_CLOSED"
    follow_up = await file(client, desk, follow_up_of=ticket_id)
    assert follow_up["related"]["follow_up_of"] == ticket_id
    original = await ok(await client.get(f"/support/tickets/{ticket_id}", headers=desk.as_user("cust")))
    assert original["related"]["follow_ups"] == [follow_up["id"]]


async def test_internal_notes_and_escalation_notes_never_reach_the_customer(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    session = await ok(await client.post("/support/sessions", json={"initial_message": "help"},
                                         headers=desk.as_user("cust")), 201)
    ticket_id = (await file(client, desk, session_id=session["session_id"]))["id"]
    noted = await ok(await client.post(f"/support/tickets/{ticket_id}/notes",
                                       json={"content": "zebracode expedite", "mention_agent_ids": ["kim"]},
                                       headers=desk.as_user("sam")), 201)
    assert [n["content"] for n in noted["notes"]] == ["zebracode expedite"]
    await ok(await client.post(f"/support/tickets/{ticket_id}/comments",
                               json={"content": "zebracode private", "public": False}, headers=desk.as_user("sam")),
             201)
    escalated = await ok(await client.post(f"/support/tickets/{ticket_id}/escalate",
                                           json={"escalation_type": "tier_2", "reason": "payments",
                                                 "notes": "zebracode escalation"}, headers=desk.as_user("sam")))
    assert escalated["priority"] == "high" and escalated["activities"][-1]["escalation_type"] == "tier_2"
    customer = desk.as_user("cust")
    seen = await client.get(f"/support/tickets/{ticket_id}", headers=customer)
    assert seen.status_code == 200 and "zebracode" not in seen.text
    body = seen.json()
    assert body["notes"] == [] and body["comments"] == []
    assert [a["action"] for a in body["activities"]] == ["created", "escalated"]
    # Not in the log's reads either: the ticket is no room, and its session's room (the transcript) holds only
    # the conversation.
    transcript = await client.get(f"/rooms/{session['room_id']}/events", params={"after_seq": 0}, headers=customer)
    assert transcript.status_code == 200 and "zebracode" not in transcript.text
    as_room = await client.get(f"/rooms/{ticket_id}/events", params={"after_seq": 0}, headers=customer)
    assert as_room.status_code == 404 and "zebracode" not in as_room.text
    session_read = await client.get(f"/support/sessions/{session['session_id']}", headers=customer)
    assert session_read.status_code == 200 and "zebracode" not in session_read.text
    listed = await client.get("/support/tickets", params={"q": "zebracode"}, headers=customer)
    assert listed.json()["total"] == 0 and "zebracode" not in listed.text
    private = await client.post(f"/support/tickets/{ticket_id}/comments", json={"content": "x", "public": False},
                                headers=customer)
    assert error_of(private, 400)["field"] == "public"
    note = await client.post(f"/support/tickets/{ticket_id}/notes", json={"content": "x"}, headers=customer)
    assert error_of(note, 403)["code"] == "FORBIDDEN"
    # The mentioned agent is notified with ids only: the note's words stay in the staff-only ticket read.
    mention = await runtime.pool.fetchrow(
        "SELECT data::text AS data FROM events WHERE tenant_id = $1 AND type = 'notification.sent'", desk.tenant_id)
    assert mention is not None and ticket_id in mention["data"] and '"kim"' in mention["data"]
    assert "zebracode" not in mention["data"]


async def test_a_customer_sees_only_its_own_tickets(client: httpx.AsyncClient, desk: Tenant) -> None:
    mine = await file(client, desk)
    theirs = await file(client, desk, as_user="other")
    assert error_of(await client.get(f"/support/tickets/{theirs['id']}", headers=desk.as_user("cust")),
                    404)["code"] == "TICKET_NOT_FOUND"
    listed = await ok(await client.get("/support/tickets", headers=desk.as_user("cust")))
    assert ([t["id"] for t in listed["data"]], listed["total"]) == ([mine["id"]], 1)
    filtered = await ok(await client.get("/support/tickets", params={"customer_id": "other"},
                                         headers=desk.as_user("cust")))
    assert filtered["total"] == 0
    commented = await client.post(f"/support/tickets/{theirs['id']}/comments", json={"content": "hi"},
                                  headers=desk.as_user("cust"))
    assert error_of(commented, 404)["code"] == "TICKET_NOT_FOUND"


async def test_the_list_filters_by_every_field_and_pages_with_a_total(client: httpx.AsyncClient, desk: Tenant) -> None:
    a = await file(client, desk, priority="high", category="refund", tags=["vip", "card"], subject="Refund please")
    b = await file(client, desk, priority="low", category="delivery", tags=["vip"], as_user="other")
    c = await file(client, desk, priority="high", category="delivery", subject="Late courier")
    await ok(await put(client, desk, b["id"], assigned_to="kim"))
    staff = desk.as_user("sam")

    async def ids(**params: str) -> list[str]:
        page = await ok(await client.get("/support/tickets", params=params, headers=staff))
        assert page["total"] == len(page["data"]) or "limit" in params
        return [t["id"] for t in page["data"]]

    assert await ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert await ids(status="open") == [b["id"]]
    assert await ids(priority="high") == [c["id"], a["id"]]
    assert await ids(assigned_to="kim") == [b["id"]]
    assert await ids(customer_id="other") == [b["id"]]
    assert await ids(category="delivery") == [c["id"], b["id"]]
    assert await ids(tag="vip") == [b["id"], a["id"]]
    assert await ids(q="refund") == [a["id"]]
    assert await ids(q="!!! &|") == []  # no words: nothing matches (never a 500)
    assert await ids(priority="high", category="delivery", tag="vip") == []
    assert await ids(sla_status="breached") == []  # no SLA fold has given any ticket a status
    page = await ok(await client.get("/support/tickets", params={"limit": "1", "offset": "1"}, headers=staff))
    assert ([t["id"] for t in page["data"]], page["total"]) == ([b["id"]], 3)
    for name, value in [("status", "reopened"), ("priority", "meh"), ("sla_status", "late"), ("limit", "0")]:
        answer = await client.get("/support/tickets", params={name: value}, headers=staff)
        assert error_of(answer, 400)["field"] == name


async def test_a_session_becomes_a_ticket_linking_its_transcript(client: httpx.AsyncClient, desk: Tenant) -> None:
    session = await ok(await client.post("/support/sessions", json={"initial_message": "Where is my refund?",
                                                                    "priority": "high"},
                                         headers=desk.as_user("cust")), 201)
    sid = session["session_id"]
    ticket = await ok(await client.post(f"/support/sessions/{sid}/ticket", json={"category": "refund"},
                                        headers=desk.as_user("sam")), 201)
    assert (ticket["subject"], ticket["priority"], ticket["customer"]["id"]) == ("Where is my refund?", "high", "cust")
    assert ticket["related"] == {"order_id": None, "session_id": sid, "room_id": session["room_id"],
                                 "follow_up_of": None, "follow_ups": []}
    refused = await client.post(f"/support/sessions/{sid}/ticket", json={}, headers=desk.as_user("cust"))
    assert error_of(refused, 403)["code"] == "FORBIDDEN"
    filed = await file(client, desk, session_id=sid)  # the customer names its own session
    assert filed["related"]["room_id"] == session["room_id"]
    by_staff = await file(client, desk, as_user="sam", session_id=sid)  # the session's customer by default
    assert by_staff["customer"]["id"] == "cust"
    foreign = await client.post("/support/tickets", json={"subject": "s", "description": "d", "session_id": sid},
                                headers=desk.as_user("other"))
    assert error_of(foreign, 404)["code"] == "SESSION_NOT_FOUND"


async def test_solved_tickets_close_by_themselves_once_after_the_tenants_days(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    await ok(await client.put("/support/settings", json={"refuse_without_agents": False,
                                                         "ticket_auto_close_days": 2},
                              headers=desk.as_user("admin")))
    solved, reopened = (await file(client, desk))["id"], (await file(client, desk))["id"]
    for ticket_id in (solved, reopened):
        await ok(await put(client, desk, ticket_id, assigned_to="sam", status="solved"))
    solved_at = (await ok(await client.get(f"/support/tickets/{solved}", headers=desk.as_user("sam"))))["solved_at"]
    await ok(await client.post(f"/support/tickets/{reopened}/comments", json={"content": "not fixed"},
                               headers=desk.as_user("cust")), 201)
    row = await runtime.pool.fetchrow("SELECT solved_at FROM support_tickets WHERE ticket_id = $1", solved)
    assert solved_at is not None and row is not None
    due = row["solved_at"] + timedelta(days=2)

    async def close(now: Any) -> int:
        return await close_solved(runtime.pool, runtime.appender, now)

    assert await close(due - timedelta(seconds=1)) == 0
    # Two instances racing at the due time: the ticket is closed once.
    assert sum(await asyncio.gather(close(due), close(due))) == 1
    await close(due + timedelta(days=30))  # later runs (they close other tenants' tickets) leave it as it is
    closed = await ok(await client.get(f"/support/tickets/{solved}", headers=desk.as_user("cust")))
    assert (closed["status"], closed["activities"][-1]["action"], closed["activities"][-1]["reason"]) == (
        "closed", "closed", "auto_close")
    still = await ok(await client.get(f"/support/tickets/{reopened}", headers=desk.as_user("cust")))
    assert still["status"] == "open"
    count = await runtime.pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND data->>'reason' = 'auto_close'", solved)
    assert count == 1


async def test_auto_close_days_are_bounded_and_default_to_four(client: httpx.AsyncClient, desk: Tenant) -> None:
    admin = desk.as_user("admin")
    assert (await ok(await client.get("/support/settings", headers=admin)))["ticket_auto_close_days"] == 4
    for days in (0, 29):
        answer = await client.put("/support/settings", json={"refuse_without_agents": False,
                                                             "ticket_auto_close_days": days}, headers=admin)
        assert error_of(answer, 400)["field"] == "ticket_auto_close_days"


async def test_a_full_text_total_is_exact_up_to_the_cap_then_an_estimate_from_the_newest(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    # Tickets 1-8; "refund" in 1, 2, 4, 5, 7 and 8.
    for number in range(1, 9):
        await file(client, desk, subject="Refund please" if number in (1, 2, 4, 5, 7, 8) else "Late courier")
    where = TicketFilter(q="refund")
    async with runtime.pool.acquire() as conn:
        rows, exact = await list_tickets(conn, desk.tenant_id, where, limit=2, offset=0, exact_up_to=6)
        _, estimated = await list_tickets(conn, desk.tenant_id, where, limit=2, offset=0, exact_up_to=3)
        later, _ = await list_tickets(conn, desk.tenant_id, where, limit=3, offset=3, exact_up_to=6)
        past, past_count = await list_tickets(conn, desk.tenant_id, where, limit=2, offset=6, exact_up_to=6)
        both = await list_tickets(conn, desk.tenant_id, TicketFilter(q="refund", status="new"), limit=10, offset=0)
    assert [r["display_number"][-2:] for r in rows] == ["08", "07"]
    assert exact == TicketCount(6)
    assert [r["display_number"][-2:] for r in later] == ["04", "02", "01"]
    assert (past, past_count) == ([], TicketCount(6))  # a page past the matches still says how many there are
    assert [r["display_number"][-2:] for r in both[0]] == ["08", "07", "05", "04", "02", "01"] and both[1].total == 6
    # Counting stopped at the 4th newest match (ticket 4): 4 matches in tickets 4-8, so 4 x 8 / 5 = 6.4.
    assert estimated == TicketCount(6, estimate=True)
    page = await ok(await client.get("/support/tickets", params={"q": "refund"}, headers=desk.as_user("sam")))
    assert (page["total"], page["total_is_estimate"]) == (6, False)
    unfiltered = await ok(await client.get("/support/tickets", headers=desk.as_user("sam")))
    assert (unfiltered["total"], unfiltered["total_is_estimate"]) == (8, False)
