"""projections/support_sessions.py: a session's row is the same whichever order its two streams' events arrive.

Live, an assignment (desk stream) and a transfer, escalation or end (session stream) commit in either order
while their positions may say the other; replay applies them by position. Both orders must give one row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from projections.support_sessions import SupportSessionsProjection
from schemas.events import (
    Event,
    EventMetadata,
    RecordedEvent,
    SupportSessionAssigned,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportSessionTransferred,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RACERS: dict[str, Event] = {
    "transfer": SupportSessionTransferred(target_type="team", target_id="billing", by="ag"),
    "escalate": SupportSessionEscalated(level="tier2", priority="high", by="ag", team_id="esc"),
    "end": SupportSessionEnded(resolution="resolved", status="resolved", by="cust"),
}


def recorded(stream: str, seq: int, position: int, event: Event, tenant: str) -> RecordedEvent:
    return RecordedEvent(position=position, stream_id=stream, seq=seq, tenant_id=tenant,
                         created_at=T0 + timedelta(seconds=position % 1000), event=event,
                         metadata=EventMetadata(tenant_id=tenant))


async def row_after(conn: asyncpg.Connection, order: list[RecordedEvent]) -> tuple[object, ...]:
    for rec in order:
        await SupportSessionsProjection().apply(conn, [rec])
    row = await conn.fetchrow(
        "SELECT status, agent_id, assigned_at, team_id, priority, arrival, queued_at, ended_at, session_seq"
        " FROM support_sessions WHERE session_id = $1", order[0].stream_id)
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("racer", sorted(RACERS))
@pytest.mark.parametrize("assignment_first_in_the_log", [True, False])
async def test_an_assignment_and_a_session_change_give_one_row_in_either_order(
    pool: asyncpg.Pool, racer: str, assignment_first_in_the_log: bool
) -> None:
    tenant = f"tn_{uuid.uuid4().hex[:12]}"
    async with pool.acquire() as conn:
        # Rows with no events behind them must not outlive the test: replay tests compare the live tables.
        transaction = conn.transaction()
        await transaction.start()
        try:
            rows = await _both_orders(conn, tenant, racer, assignment_first_in_the_log)
        finally:
            await transaction.rollback()
    assert rows[0] == rows[1]


async def _both_orders(
    conn: asyncpg.Connection, tenant: str, racer: str, assignment_first_in_the_log: bool
) -> list[tuple[object, ...]]:
    rows = []
    base = 10**12 + uuid.uuid4().int % 10**9 * 10  # the same positions for both orders
    for apply_assignment_first in (True, False):
        sid = f"sess_{uuid.uuid4().hex[:12]}"
        created = recorded(sid, 1, base, SupportSessionCreated(
            session_id=sid, room_id="room_x", customer_id="cust", channel="chat", priority="normal",
            created_by="cust"), tenant)
        a_pos, r_pos = (base + 1, base + 2) if assignment_first_in_the_log else (base + 2, base + 1)
        # The router saw the wait that began with the session's creation.
        assign = recorded(f"support:{tenant}", 1, a_pos, SupportSessionAssigned(
            session_id=sid, agent_id="ag", policy_version="spare_capacity/1", candidates=[], arrival=base), tenant)
        change = recorded(sid, 2, r_pos, RACERS[racer], tenant)
        order = [created, assign, change] if apply_assignment_first else [created, change, assign]
        rows.append(await row_after(conn, order))
    return rows
