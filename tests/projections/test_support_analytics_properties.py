"""The analytics facts against a plain fold of the same events, however the events are batched or re-applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.support_analytics import SupportAnalyticsProjection
from schemas.events import (
    Event,
    EventMetadata,
    MessageSent,
    RecordedEvent,
    SupportSessionCreated,
    SupportTicketCommented,
    SupportTicketCreated,
    SupportTicketUpdated,
)
from service.identity.ids import new_id
from service.runtime import Runtime

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
STATUSES = ("open", "pending", "on_hold", "solved", "closed")
PROPERTY_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                    HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Op:
    kind: str  # comment | status | message
    public: bool = True
    agent: bool = True
    status: str = "open"
    system: bool = False
    elsewhere: bool = False  # a message in another room


ticket_ops = st.lists(st.one_of(
    st.builds(Op, kind=st.just("comment"), public=st.booleans(), agent=st.booleans()),
    st.builds(Op, kind=st.just("status"), status=st.sampled_from(STATUSES)),
), max_size=12)
session_ops = st.lists(st.builds(Op, kind=st.just("message"), agent=st.booleans(), system=st.booleans(),
                                 elsewhere=st.booleans()), max_size=10)


def _recorded(tenant: str, items: list[tuple[str, Event]]) -> list[RecordedEvent]:
    return [RecordedEvent(position=n + 1, stream_id=stream, seq=n + 1, tenant_id=tenant,
                          created_at=T0 + timedelta(minutes=n), event=event, metadata=EventMetadata(tenant_id=tenant))
            for n, (stream, event) in enumerate(items)]


def ticket_reference(ops: list[Op]) -> dict[str, Any]:
    """What the definitions say of a ticket with these changes, one minute apart after its creation."""
    facts: dict[str, Any] = {"first_response_at": None, "agent_replies": 0, "resolved_at": None,
                             "first_resolved_at": None, "reopens": 0, "reopened_at": None, "status": "new"}
    for n, op in enumerate(ops, start=1):
        at = T0 + timedelta(minutes=n)
        if op.kind == "comment" and op.public and op.agent:
            facts["agent_replies"] += 1
            facts["first_response_at"] = facts["first_response_at"] or at
        elif op.kind == "status":
            facts["status"] = op.status
            if op.status in ("solved", "closed"):
                facts["resolved_at"] = facts["resolved_at"] or at
                facts["first_resolved_at"] = facts["first_resolved_at"] or at
            elif facts["resolved_at"] is not None:
                facts["reopens"] += 1
                facts["reopened_at"] = facts["reopened_at"] or at
                facts["resolved_at"] = None
    return facts


async def _apply_three_ways(runtime: Runtime, events: list[RecordedEvent], split: int, again: int,
                            item: str, columns: tuple[str, ...]) -> dict[str, Any]:
    """The item's facts after the events in two batches cut at `split`, then the last `again` of them once more."""
    projection = SupportAnalyticsProjection()
    async with runtime.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await projection.apply(conn, events[:split])
            await projection.apply(conn, events[split:])
            query = f"SELECT {', '.join(columns)} FROM support_analytics WHERE item_id = $1"
            row = dict(await conn.fetchrow(query, item) or {})
            if again:
                await projection.apply(conn, events[-again:])
            assert dict(await conn.fetchrow(query, item) or {}) == row, "re-applying events changed the facts"
            return row
        finally:
            await transaction.rollback()


@PROPERTY_SETTINGS
@given(ops=ticket_ops, data=st.data())
async def test_ticket_facts_are_the_plain_fold_of_its_changes(runtime: Runtime, ops: list[Op],
                                                              data: st.DataObject) -> None:
    tenant, ticket = new_id("tn"), new_id("tkt")
    items: list[tuple[str, Event]] = [(ticket, SupportTicketCreated(
        ticket_id=ticket, number=1, display_number="TKT-2026-0001", subject="s", description="d", customer_id="c",
        priority="normal", created_by="c"))]
    for op in ops:
        if op.kind == "comment":
            items.append((ticket, SupportTicketCommented(comment_id=new_id("cmt"), author_id="x", content="c",
                                                         author_type="agent" if op.agent else "customer",
                                                         public=op.public)))
        else:
            items.append((ticket, SupportTicketUpdated(by="x", changed=["status"], status=op.status)))
    events = _recorded(tenant, items)
    split = data.draw(st.integers(1, len(events)), label="split")
    again = data.draw(st.integers(0, len(events)), label="again")
    expected = ticket_reference(ops)
    got = await _apply_three_ways(runtime, events, split, again, ticket, tuple(expected))
    assert got == expected


@PROPERTY_SETTINGS
@given(ops=session_ops, data=st.data())
async def test_a_session_counts_the_messages_of_anyone_but_its_customer_in_its_own_room(
    runtime: Runtime, ops: list[Op], data: st.DataObject
) -> None:
    tenant, session = new_id("tn"), new_id("sess")
    room, other = f"room-{session}", f"room-other-{session}"
    items: list[tuple[str, Event]] = [(session, SupportSessionCreated(
        session_id=session, room_id=room, customer_id="cust", channel="chat", priority="normal", created_by="cust"))]
    replies, first = 0, None
    for n, op in enumerate(ops, start=1):
        sender = "agent" if op.agent else "cust"
        items.append((other if op.elsewhere else room, MessageSent(
            message_id=new_id("msg"), sender_id=sender, content="m", message_type="system" if op.system else "text")))
        if op.agent and not op.system and not op.elsewhere:
            replies += 1
            first = first or T0 + timedelta(minutes=n)
    events = _recorded(tenant, items)
    split = data.draw(st.integers(1, len(events)), label="split")
    again = data.draw(st.integers(0, len(events)), label="again")
    got = await _apply_three_ways(runtime, events, split, again, session, ("agent_replies", "first_response_at"))
    assert got == {"agent_replies": replies, "first_response_at": first}
