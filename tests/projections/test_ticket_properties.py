"""Properties over generated ticket histories: racing writers never break the status machine, the counts behind
the listing's totals match the tickets, and replay reproduces the tickets, their timelines and the counts.

Each example works in a tenant of its own; the examples share the session's database and runtime.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from projections.inline import INLINE_PROJECTIONS
from projections.replay import replay
from service.domain.support.tickets import STATUSES
from service.runtime import Runtime
from tests.conftest import make_tenant

LIVE_TABLES = tuple(table for projection in INLINE_PROJECTIONS for table in projection.tables)
# Where an explicit change may lead (the domain's table restated), and what else moves a status.
ALLOWED = {"new": {"open", "pending", "on_hold", "solved"}, "open": {"pending", "on_hold", "solved"},
           "pending": {"open", "on_hold", "solved"}, "on_hold": {"open", "pending", "solved"},
           "solved": {"open", "closed"}, "closed": set()}


@dataclass(frozen=True)
class Op:
    kind: str  # status, assign, unassign, customer_comment, agent_comment, note, escalate, tags
    ticket: int
    status: str


_ops = st.builds(Op, st.sampled_from(("status", "status", "status", "assign", "unassign", "customer_comment",
                                      "agent_comment", "note", "escalate", "tags")), st.integers(0, 1),
                 st.sampled_from(STATUSES))
histories = st.lists(st.lists(_ops, min_size=1, max_size=5), min_size=1, max_size=5)


async def _run(client: httpx.AsyncClient, headers: dict[str, dict[str, str]], tickets: list[str], op: Op) -> int:
    path = f"/support/tickets/{tickets[op.ticket]}"
    if op.kind == "status":
        response = await client.put(path, json={"status": op.status}, headers=headers["ag"])
    elif op.kind in ("assign", "unassign"):
        response = await client.put(path, json={"assigned_to": "ag" if op.kind == "assign" else None},
                                    headers=headers["ag"])
    elif op.kind == "note":
        response = await client.post(f"{path}/notes", json={"content": "n"}, headers=headers["ag"])
    elif op.kind == "tags":  # the status names a tag too; a repeated tag counts once
        response = await client.put(path, json={"tags": [op.status, "x", op.status]}, headers=headers["ag"])
    elif op.kind == "escalate":
        response = await client.post(f"{path}/escalate", json={"escalation_type": "t2"}, headers=headers["ag"])
    else:
        who = "cu" if op.kind == "customer_comment" else "ag"
        response = await client.post(f"{path}/comments", json={"content": "c"}, headers=headers[who])
    return response.status_code


def _check_machine(statuses: list[tuple[str, str | None]]) -> None:
    """Each recorded status follows the one before it under the rules: an explicit change the table allows, a
    requester's reopen, or an assignment opening a new ticket; nothing returns to new or leaves closed."""
    current = "new"
    for status, reason in statuses:
        if status == current:
            continue
        if reason == "requester_comment":
            assert current in ("pending", "on_hold", "solved") and status == "open", (current, status)
        elif reason == "assigned":
            assert (current, status) == ("new", "open")
        else:
            assert status in ALLOWED[current], (current, status)
        current = status


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories)
async def test_racing_ticket_changes_keep_the_status_machine_and_replay_reproduces_them(
    app: Starlette, runtime: Runtime, database_url: str, history: list[list[Op]]
) -> None:
    tenant = await make_tenant(database_url)
    admin = tenant.as_user("admin")
    headers = {"ag": tenant.as_user("ag"), "cu": tenant.as_user("cu")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roomlog.test") as client:
        for user_id, role in (("ag", "agent"), ("cu", "customer")):
            await client.post("/users", json={"user_id": user_id, "display_name": user_id, "role": role},
                              headers=admin)
        tickets = [
            (await client.post("/support/tickets", json={"subject": f"t{i}", "description": "d", "tags": ["x"]},
                               headers=headers["cu"])).json()["id"]
            for i in range(2)
        ]
        for group in history:  # each group runs concurrently, the groups one after another
            statuses = await asyncio.gather(*(_run(client, headers, tickets, op) for op in group))
            assert set(statuses) <= {200, 201, 400, 409}, statuses
    for ticket_id in tickets:
        rows = await runtime.pool.fetch(
            "SELECT type, data::text AS data FROM events WHERE stream_id = $1 ORDER BY seq", ticket_id)
        updates = [json.loads(r["data"]) for r in rows if r["type"] == "support.ticket.updated"]
        recorded = [(u["status"], u.get("reason")) for u in updates if "status" in u["changed"]]
        _check_machine(recorded)
        closed_at = next((i for i, r in enumerate(rows) if '"status":"closed"' in r["data"]), None)
        assert closed_at is None or closed_at == len(rows) - 1  # closed is final
        live = await runtime.pool.fetchval("SELECT status FROM support_tickets WHERE ticket_id = $1", ticket_id)
        assert live == (recorded[-1][0] if recorded else "new")
    counts = await runtime.pool.fetch(
        "SELECT status, priority, assigned_to, category, n FROM support_ticket_counts WHERE tenant_id = $1 AND n > 0"
        " ORDER BY 1, 2, 3, 4", tenant.tenant_id)
    rows = await runtime.pool.fetch(
        "SELECT status, priority, coalesce(assigned_to, ''), coalesce(category, ''), count(*) FROM support_tickets"
        " WHERE tenant_id = $1 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4", tenant.tenant_id)
    assert [tuple(r) for r in counts] == [tuple(r) for r in rows]  # the counts the listing's totals add up
    tag_counts = await runtime.pool.fetch(
        "SELECT tag, status, priority, n FROM support_ticket_tag_counts WHERE tenant_id = $1 AND n > 0"
        " ORDER BY 1, 2, 3", tenant.tenant_id)
    tag_rows = await runtime.pool.fetch(
        "SELECT tag, status, priority, count(*) FROM support_tickets, unnest(tags) AS tag WHERE tenant_id = $1"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", tenant.tenant_id)
    assert [tuple(r) for r in tag_counts] == [tuple(r) for r in tag_rows]
    report = await replay(runtime.pool, verify=True)
    assert report.differences == {table: 0 for table in LIVE_TABLES}
