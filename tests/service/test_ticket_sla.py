"""Tickets on the SLA clock: the matched policy recorded, due times from the fold, pauses, breaches recorded by the
timer on the ticket, the `sla_status` filter, and versions kept until someone re-applies."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from eventstore.read import read_stream
from schemas.events import SlaClockStarted
from service.commands.support import sla as sla_config
from service.commands.support import ticket_sla
from service.consumers.sla_timer import BreachTimer
from service.domain.support.calendars import add_business_time
from service.domain.support.sla import fold_clock
from service.domain.support.ticket_sla import clock_events
from service.identity.auth import Principal
from service.runtime import Runtime
from tests.conftest import Tenant, error_of


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def policy(name: str, *, first: int = 60, resolution: int = 480, **conditions: list[str]) -> dict[str, Any]:
    return {"name": name, "conditions": conditions,
            "targets": {"first_response_minutes": first, "resolution_minutes": resolution}}


def instant(value: str | None) -> datetime | None:
    return None if value is None else msgspec.convert(value, datetime)


@pytest.fixture
async def desk(client: httpx.AsyncClient, tenant: Tenant) -> Tenant:
    """The tenant with agent sam and customer cust."""
    for user_id, role in [("sam", "agent"), ("cust", "customer")]:
        await ok(await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                                   headers=tenant.as_user("admin")), 201)
    return tenant


async def file(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    fields = {"subject": "Late order", "description": "Where is my order?", **body}
    return dict(await ok(await client.post("/support/tickets", json=fields, headers=tenant.as_user("cust")), 201))


async def folded(runtime: Runtime, tenant: Tenant, ticket_id: str, now: datetime) -> Any:
    """The fold of the ticket's recorded events under the versions it recorded, at `now`."""
    row = await runtime.pool.fetchrow("SELECT sla_policy_id, sla_policy_version, sla_calendar_version"
                                      " FROM support_tickets WHERE ticket_id = $1", ticket_id)
    assert row is not None
    sla = await sla_config.applied(runtime, tenant.tenant_id, row["sla_policy_id"], row["sla_policy_version"],
                                   row["sla_calendar_version"])
    events = await read_stream(runtime.pool, ticket_id, limit=1000)
    return fold_clock(clock_events(events), sla.policy, sla.calendar, now)


async def clocks(runtime: Runtime, ticket_id: str) -> dict[str, tuple[datetime | None, bool]]:
    rows = await runtime.pool.fetch("SELECT clock_id, due_at, stopped FROM sla_clocks WHERE stream_id = $1",
                                    ticket_id)
    return {r["clock_id"]: (r["due_at"], r["stopped"]) for r in rows}


async def test_a_new_ticket_runs_on_the_first_matching_policy_with_the_folds_due_times(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    admin = desk.as_user("admin")
    await ok(await client.post("/support/sla/policies", json=policy("urgent", first=10, priority=["urgent"]),
                               headers=admin), 201)
    general = await ok(await client.post("/support/sla/policies", json=policy("general"), headers=admin), 201)
    ticket = await file(client, desk)
    created = instant(ticket["created_at"])
    assert created is not None
    assert ticket["sla"] == {
        "response_due": ticket["sla"]["response_due"], "resolution_due": ticket["sla"]["resolution_due"],
        "status": "within_sla", "policy_id": general["policy_id"], "policy_version": 1, "calendar_id": None,
        "calendar_version": None,
    }
    fold = await folded(runtime, desk, ticket["id"], created)
    assert instant(ticket["sla"]["response_due"]) == fold.response_due == created + timedelta(minutes=60)
    assert instant(ticket["sla"]["resolution_due"]) == fold.resolution_due == created + timedelta(minutes=480)
    assert await clocks(runtime, ticket["id"]) == {"first_response:1": (fold.response_due, False),
                                                   "resolution:1": (fold.resolution_due, False)}
    assert [a["action"] for a in ticket["activities"]] == ["created", "sla_applied"]
    # The first public agent reply stops the response clock; the list carries the same `sla`.
    replied = await ok(await client.post(f"/support/tickets/{ticket['id']}/comments", json={"content": "On it"},
                                         headers=desk.as_user("sam")), 201)
    assert replied["sla"]["response_due"] is None and replied["sla"]["status"] == "within_sla"
    assert (await clocks(runtime, ticket["id"]))["first_response:1"][1] is True
    page = await ok(await client.get("/support/tickets", params={"sla_status": "within_sla"}, headers=admin))
    assert [(t["id"], t["sla"]) for t in page["data"]] == [(ticket["id"], replied["sla"])]


async def test_a_ticket_on_a_business_hours_policy_records_the_calendar_version_and_counts_working_time(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    admin = desk.as_user("admin")
    week = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]
    cal = await ok(await client.post("/support/sla/calendars", headers=admin,
                                     json={"name": "office", "timezone": "Europe/Berlin", "periods": week}), 201)
    await ok(await client.post("/support/sla/policies", json={**policy("office"), "calendar_id": cal["calendar_id"]},
                               headers=admin), 201)
    ticket = await file(client, desk)
    assert (ticket["sla"]["calendar_id"], ticket["sla"]["calendar_version"]) == (cal["calendar_id"], 1)
    created = instant(ticket["created_at"])
    assert created is not None
    applied = await sla_config.applied(runtime, desk.tenant_id, ticket["sla"]["policy_id"], 1, 1)
    assert instant(ticket["sla"]["response_due"]) == add_business_time(created, timedelta(minutes=60),
                                                                       applied.calendar)
    fold = await folded(runtime, desk, ticket["id"], created)
    assert (instant(ticket["sla"]["response_due"]), instant(ticket["sla"]["resolution_due"])) == (
        fold.response_due, fold.resolution_due)


async def test_pending_pauses_the_clock_and_reopening_moves_the_due_times_by_the_pause(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    await ok(await client.post("/support/sla/policies", json=policy("general"), headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    sam = desk.as_user("sam")
    paused = await ok(await client.put(f"/support/tickets/{ticket['id']}", json={"assigned_to": "sam",
                                                                              "status": "pending"}, headers=sam))
    assert paused["sla"]["status"] == "paused"
    assert (paused["sla"]["response_due"], paused["sla"]["resolution_due"]) == (None, None)
    assert {due for due, _ in (await clocks(runtime, ticket["id"])).values()} == {None}
    listed = await ok(await client.get("/support/tickets", params={"sla_status": "paused"}, headers=sam))
    assert [t["id"] for t in listed["data"]] == [ticket["id"]]
    # The requester's comment reopens it: the clock runs again, later by exactly the paused stretch.
    await ok(await client.post(f"/support/tickets/{ticket['id']}/comments", json={"content": "Any news?"},
                               headers=desk.as_user("cust")), 201)
    reopened = await ok(await client.get(f"/support/tickets/{ticket['id']}", headers=sam))
    events = await read_stream(runtime.pool, ticket["id"], limit=100)
    stamps = [e.created_at for e in events if e.type in ("support.ticket.created", "support.ticket.updated")]
    created, pending, opened = stamps
    pause = opened - pending
    assert reopened["sla"]["status"] == "within_sla"
    assert instant(reopened["sla"]["response_due"]) == created + timedelta(minutes=60) + pause
    assert instant(reopened["sla"]["resolution_due"]) == created + timedelta(minutes=480) + pause
    fold = await folded(runtime, desk, ticket["id"], opened)
    assert instant(reopened["sla"]["resolution_due"]) == fold.resolution_due


async def test_a_breach_the_timer_records_on_the_ticket_shows_in_its_sla_and_the_filter(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    await ok(await client.post("/support/sla/policies", json=policy("fast", first=1),
                               headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    due = instant(ticket["sla"]["response_due"])
    assert due is not None
    now = [due - timedelta(seconds=1)]
    timer = BreachTimer(runtime.pool, runtime.appender, "unused", now=lambda: now[0])
    assert await timer.record(ticket["id"], "first_response:1") == 1  # at risk (75 % of the minute) only
    sam = desk.as_user("sam")
    assert (await ok(await client.get(f"/support/tickets/{ticket['id']}", headers=sam)))["sla"]["status"] == "at_risk"
    now[0] = due
    assert await timer.record(ticket["id"], "first_response:1") == 1
    read = await ok(await client.get(f"/support/tickets/{ticket['id']}", headers=sam))
    assert read["sla"]["status"] == "breached"
    breach = [a for a in read["activities"] if a["action"] == "sla_breached"]
    assert [(a["metric"], instant(a["due_at"]), a["by"]) for a in breach] == [("first_response", due, "sla-timer")]
    listed = await ok(await client.get("/support/tickets", params={"sla_status": "breached"}, headers=sam))
    assert [t["id"] for t in listed["data"]] == [ticket["id"]]
    # The timer's events moved the stream on; the ticket's writers still append (its seq follows them), and the
    # fold after the change starts from the recorded breach, so a clock behind the timer's does not undo it.
    noted = await ok(await client.post(f"/support/tickets/{ticket['id']}/notes", json={"content": "late!"},
                                       headers=sam), 201)
    assert noted["sla"]["status"] == "breached" and len(noted["notes"]) == 1


async def test_a_policy_change_leaves_a_ticket_alone_until_someone_reapplies(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    admin, sam = desk.as_user("admin"), desk.as_user("sam")
    pol = await ok(await client.post("/support/sla/policies", json=policy("general"), headers=admin), 201)
    ticket = await file(client, desk)
    await ok(await client.put(f"/support/sla/policies/{pol['policy_id']}", json=policy("general", first=5),
                              headers=admin))
    await ok(await client.post(f"/support/tickets/{ticket['id']}/notes", json={"content": "later"}, headers=sam), 201)
    kept = await ok(await client.get(f"/support/tickets/{ticket['id']}", headers=sam))
    assert kept["sla"] == ticket["sla"]  # version 1, due in 60 minutes, whatever changed since
    refused = error_of(await client.post(f"/support/tickets/{ticket['id']}/sla/reapply",
                                         headers=desk.as_user("cust")), 403)
    assert refused["code"] == "FORBIDDEN"
    again = await ok(await client.post(f"/support/tickets/{ticket['id']}/sla/reapply", headers=sam))
    created = instant(ticket["created_at"])
    assert created is not None
    assert again["sla"]["policy_version"] == 2
    assert instant(again["sla"]["response_due"]) == created + timedelta(minutes=5)
    assert (await clocks(runtime, ticket["id"]))["first_response:1"] == (created + timedelta(minutes=5), False)
    applied = [a for a in again["activities"] if a["action"] == "sla_applied"]
    assert [(a["policy_version"], a["by"]) for a in applied] == [(1, "cust"), (2, "sam")]
    await ok(await client.delete(f"/support/sla/policies/{pol['policy_id']}", headers=admin))
    gone = error_of(await client.post(f"/support/tickets/{ticket['id']}/sla/reapply", headers=sam), 404)
    assert gone["code"] == "SLA_POLICY_NOT_FOUND"


async def test_without_a_matching_policy_a_ticket_has_no_sla(client: httpx.AsyncClient, desk: Tenant) -> None:
    await ok(await client.post("/support/sla/policies", json=policy("vip", priority=["urgent"]),
                               headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    assert ticket["sla"] is None and [a["action"] for a in ticket["activities"]] == ["created"]


async def test_racing_changes_of_one_ticket_record_each_clock_once_and_end_agreeing_with_the_fold(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    next_response = {**policy("general"), "targets": {"first_response_minutes": 60, "resolution_minutes": 480,
                                                      "next_response_minutes": 30}}
    await ok(await client.post("/support/sla/policies", json=next_response, headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    path = f"/support/tickets/{ticket['id']}"
    writes = [client.post(f"{path}/comments", json={"content": f"c{n}"},
                          headers=desk.as_user("sam" if n % 2 else "cust")) for n in range(6)]
    writes.append(client.put(path, json={"priority": "high"}, headers=desk.as_user("sam")))
    answers = await asyncio.gather(*writes)
    assert {r.status_code for r in answers} <= {200, 201}, [r.text for r in answers if r.status_code == 409]
    events = await read_stream(runtime.pool, ticket["id"], limit=1000)
    started = [e.event.clock_id for e in events if isinstance(e.event, SlaClockStarted)]
    assert len(started) == len(set(started))
    read = await ok(await client.get(path, headers=desk.as_user("sam")))
    fold = await folded(runtime, desk, ticket["id"], events[-1].created_at)
    assert (instant(read["sla"]["response_due"]), instant(read["sla"]["resolution_due"]), read["sla"]["status"]) \
        == (fold.response_due, fold.resolution_due, fold.status)


async def test_a_new_tickets_sla_is_in_its_creations_transaction_and_a_later_fold_adds_nothing(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    await ok(await client.post("/support/sla/policies", json=policy("general"), headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    rows = await runtime.pool.fetch("SELECT seq, type, tx_id, created_at FROM events WHERE stream_id = $1"
                                    " ORDER BY seq", ticket["id"])
    assert [r["type"] for r in rows] == ["support.ticket.created", "support.ticket.sla_applied", "sla.clock_started",
                                         "sla.clock_started", "support.ticket.sla_evaluated"]
    # One transaction with the ticket (and its number): a crash keeps all of them or none.
    numbered = await runtime.pool.fetchval("SELECT tx_id FROM events WHERE type = 'support.ticket.numbered'"
                                           " AND data->>'ticket_id' = $1", ticket["id"])
    assert {r["tx_id"] for r in rows} == {numbered}
    assert ticket["sla"]["status"] == "within_sla" and ticket["sla"]["response_due"] is not None
    # Folded at the creation's own instant: folding the stream again finds the same clocks.
    principal = Principal(tenant_id=desk.tenant_id, user_id="sam", role="agent")
    assert await ticket_sla.settle(runtime, principal, ticket["id"])
    assert await runtime.pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", ticket["id"]) == len(rows)


async def test_each_change_and_its_folds_sla_events_are_one_transaction_and_a_later_fold_adds_nothing(
    client: httpx.AsyncClient, desk: Tenant, runtime: Runtime
) -> None:
    await ok(await client.post("/support/sla/policies", json=policy("general"), headers=desk.as_user("admin")), 201)
    ticket = await file(client, desk)
    path, sam = f"/support/tickets/{ticket['id']}", desk.as_user("sam")
    principal = Principal(tenant_id=desk.tenant_id, user_id="sam", role="agent")
    changes = [
        (client.put, path, {"assigned_to": "sam", "status": "pending"}, sam, "paused"),
        (client.post, f"{path}/comments", {"content": "Any news?"}, desk.as_user("cust"), "within_sla"),
        (client.post, f"{path}/comments", {"content": "Shipped today"}, sam, "within_sla"),
        (client.put, path, {"status": "solved"}, sam, None),
    ]
    seen = await runtime.pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", ticket["id"])
    for send, url, body, headers, status in changes:
        await ok(await send(url, json=body, headers=headers), 201 if send == client.post else 200)
        rows = await runtime.pool.fetch("SELECT type, tx_id, created_at FROM events WHERE stream_id = $1 AND seq > $2"
                                        " ORDER BY seq", ticket["id"], seen)
        seen += len(rows)
        folds = [r["type"] for r in rows if r["type"].startswith("sla.") or r["type"].endswith("sla_evaluated")]
        assert folds, f"{body}: the change moved the clock, so its fold records something"
        # The change and what its fold records: one transaction, so no crash keeps one without the other.
        assert len({(r["tx_id"], r["created_at"]) for r in rows}) == 1, [r["type"] for r in rows]
        read = await ok(await client.get(path, headers=sam))
        fold = await folded(runtime, desk, ticket["id"], rows[-1]["created_at"])
        assert (read["sla"]["status"], instant(read["sla"]["resolution_due"])) == (fold.status, fold.resolution_due)
        if status is not None:
            assert read["sla"]["status"] == status
        # Folded once: folding the stream again right after records nothing more.
        assert await ticket_sla.settle(runtime, principal, ticket["id"])
        assert await runtime.pool.fetchval("SELECT last_seq FROM streams WHERE stream_id = $1", ticket["id"]) == seen
