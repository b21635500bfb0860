"""Tickets' SLA clocks: the matching policy and first fold of a new ticket (appended with its creation), the fold
of each ticket change (appended with the change) recording what the breach timer follows; re-apply the current
policies on request.

The fold reads the ticket's whole stream (its clock events, the applied versions, the clocks recorded so far)
and appends the changes at the seq it read, so racing writers (or the timer) make it read and fold again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from eventstore.read import read_stream
from schemas.errors import SlaPolicyNotFound, WrongExpectedSeq
from schemas.events import Event, EventMetadata, RecordedEvent, SupportTicketCreated, SupportTicketSlaApplied
from service.commands.metadata import metadata_for
from service.commands.support import sla as sla_config
from service.domain.authorization import authorize
from service.domain.support.sla import fold_clock
from service.domain.support.ticket_sla import applied_sla, clock_events, fold_instant, sla_changes
from service.identity.auth import Principal

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.tickets")
FOLD_ATTEMPTS = 10
_STREAM_LIMIT = 1_000_000  # a ticket's whole stream; tickets are small


async def _match(runtime: Runtime, tenant_id: str, events: list[RecordedEvent],
                 row: dict[str, object]) -> sla_config.AppliedSla | None:
    """The first policy, in order, matching the ticket's current priority and category (and its session's
    channel); None when none does."""
    created = events[0].event
    assert isinstance(created, SupportTicketCreated)
    return await policy_for(runtime, tenant_id, priority=str(row["priority"]),
                            category=row["category"],  # type: ignore[arg-type]
                            session_id=created.session_id)


async def policy_for(runtime: Runtime, tenant_id: str, *, priority: str, category: str | None,
                     session_id: str | None) -> sla_config.AppliedSla | None:
    """The first policy, in order, matching a ticket of this priority and category (and its session's channel);
    None when none does."""
    channel = None
    if session_id is not None:
        channel = await runtime.pool.fetchval("SELECT channel FROM support_sessions WHERE session_id = $1",
                                              session_id)
    try:
        return await sla_config.match(runtime, tenant_id, priority=priority, category=category, channel=channel)
    except SlaPolicyNotFound:
        return None


def opening(created: RecordedEvent, sla: sla_config.AppliedSla, *, by: str, now: datetime) -> list[Event]:
    """A new ticket's SLA events, to append with its creation: the policy applied, then its folded clock.

    `created` carries the instant the ticket is created at (its append's transaction time), so the clock is the
    one any later fold of the stream finds again; `now` is the service's clock (never before that instant)."""
    events = [created]
    clock = fold_clock(clock_events(events), sla.policy, sla.calendar, fold_instant(events, now))
    return [_applied(sla, by=by, reapplied=False), *sla_changes(events, clock)]


def _applied(sla: sla_config.AppliedSla, *, by: str, reapplied: bool) -> SupportTicketSlaApplied:
    return SupportTicketSlaApplied(policy_id=sla.policy_id, policy_version=sla.policy_version,
                                   calendar_id=sla.policy.calendar_id, calendar_version=sla.calendar_version, by=by,
                                   reapplied=reapplied)


async def settle(runtime: Runtime, principal: Principal, ticket_id: str, *, reapply: bool = False) -> bool:
    """Fold the ticket's clock and append what changed; with `reapply`, match again whatever was applied. False
    when the ticket has no policy (none matched when it was created, or at the last re-apply)."""
    tenant_id = principal.tenant_id
    for _ in range(FOLD_ATTEMPTS):
        events = await read_stream(runtime.pool, ticket_id, limit=_STREAM_LIMIT)
        row = await runtime.pool.fetchrow("SELECT priority, category FROM support_tickets WHERE ticket_id = $1",
                                          ticket_id)
        if not events or row is None:
            return False
        recorded = applied_sla(events)
        applying: list[SupportTicketSlaApplied] = []
        if reapply:
            found = await _match(runtime, tenant_id, events, dict(row))
            if found is None:
                raise SlaPolicyNotFound("no SLA policy matches the ticket", field="ticket_id")
            applying.append(_applied(found, by=principal.user_id, reapplied=True))
            sla = found
        elif recorded is None:
            return False
        else:
            sla = await sla_config.applied(runtime, tenant_id, recorded.policy_id, recorded.policy_version,
                                           recorded.calendar_version)
        clock = fold_clock(clock_events(events), sla.policy, sla.calendar,
                           fold_instant(events, runtime.wall_clock()))
        changes = [*applying, *sla_changes(events, clock)]
        if not changes:
            return True
        try:
            await runtime.appender.append(ticket_id, changes, tenant_id=tenant_id,
                                          metadata=metadata_for(principal),
                                          expected_seq=events[-1].seq)
            return True
        except WrongExpectedSeq:
            continue  # another change (or the timer) got there first: fold what is there now
    log.warning("ticket sla fold kept losing races", ticket_id=ticket_id)
    return True


Fold = Callable[[Sequence[Event], datetime], list[Event]]


async def folding(runtime: Runtime, tenant_id: str, ticket_id: str, *, seq: int) -> Fold:
    """For a change of the ticket as it was at `seq`: a function of the change's events and the instant its append
    records (the transaction's) giving those events followed by what the clock's fold then records, so that the
    change and its clock are appended together and no crash leaves one without the other. The events alone for a
    ticket without a policy."""
    events = [rec for rec in await read_stream(runtime.pool, ticket_id, limit=_STREAM_LIMIT) if rec.seq <= seq]
    recorded = applied_sla(events)
    if recorded is None:
        return lambda change, now: list(change)
    sla = await sla_config.applied(runtime, tenant_id, recorded.policy_id, recorded.policy_version,
                                   recorded.calendar_version)
    meta = EventMetadata(tenant_id=tenant_id)

    def fold(change: Sequence[Event], now: datetime) -> list[Event]:
        history = [*events, *(RecordedEvent(position=0, stream_id=ticket_id, seq=seq + n, tenant_id=tenant_id,
                                            created_at=now, event=event, metadata=meta)
                              for n, event in enumerate(change, start=1))]
        clock = fold_clock(clock_events(history), sla.policy, sla.calendar,
                           fold_instant(history, runtime.wall_clock()))
        return [*change, *sla_changes(history, clock)]

    return fold


async def reapply(runtime: Runtime, principal: Principal, ticket_id: str) -> None:
    """Match the tenant's current policies against the ticket again and record the versions (agents, admins)."""
    authorize("support.ticket.work", principal.role)
    await settle(runtime, principal, ticket_id, reapply=True)
