"""Auto-close: solved tickets close by themselves once their tenant's number of days (4 unless set) has passed.

Each close is a `support.ticket.updated` appended at the seq the ticket was read at, so however many runs or
instances race, a ticket is closed once, and one reopened or changed meanwhile is decided again next run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime

import asyncpg

from eventstore.append import Appender
from projections.support_agents import fetch_desk_settings
from projections.support_tickets import fetch_ticket, tickets_due_to_close
from schemas.errors import WrongExpectedSeq
from schemas.events import EventMetadata, SupportTicketUpdated
from service.domain.support.tickets import DEFAULT_AUTO_CLOSE_DAYS, auto_close_due
from service.periodic import Periodic

SYSTEM = "system"


async def close_solved(pool: asyncpg.Pool, appender: Appender, now: datetime, *, limit: int = 500) -> int:
    """Close every solved ticket whose tenant's auto-close days passed at `now`; how many this run closed."""
    closed = 0
    for due in await tickets_due_to_close(pool, now, limit=limit):
        row = await fetch_ticket(pool, due["tenant_id"], due["ticket_id"])
        settings = await fetch_desk_settings(pool, due["tenant_id"])
        days = settings["ticket_auto_close_days"] if settings is not None else DEFAULT_AUTO_CLOSE_DAYS
        if row is None or not auto_close_due(row["status"], row["solved_at"], now, days=days):
            continue
        event = SupportTicketUpdated(by=SYSTEM, changed=["status"], status="closed", priority=row["priority"],
                                     assigned_to=row["assigned_to"], tags=list(row["tags"]),
                                     category=row["category"], reason="auto_close")
        with contextlib.suppress(WrongExpectedSeq):  # changed meanwhile: the next run decides again
            await appender.append(row["ticket_id"], [event], tenant_id=due["tenant_id"],
                                          metadata=EventMetadata(tenant_id=due["tenant_id"], actor=SYSTEM),
                                          expected_seq=row["ticket_seq"])
            closed += 1
    return closed


class AutoClose:
    """Every `interval` seconds, close the solved tickets that are due (by `clock`)."""

    def __init__(self, pool: asyncpg.Pool, appender: Appender, *, clock: Callable[[], datetime],
                 interval: float = 60.0) -> None:
        self._pool, self._appender, self._clock, self._interval = pool, appender, clock, interval
        self._periodic = Periodic("ticket-auto-close", self._step, interval=interval)

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop the background runs (one in progress is cancelled; the next run finishes its work)."""
        await self._periodic.stop()

    async def _step(self) -> None:
        await close_solved(self._pool, self._appender, self._clock())
