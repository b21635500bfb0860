"""The retention job: redact, for everyone, the messages older than their room's settings.message_retention_days.

Each redaction is a `message.deleted` event (reason `retention`) appended under a LiveMessage guard that
deletes: the database refuses a second deletion of the same message under the room's lock, so however many
instances run the job at once, each expired message is redacted exactly once. The job follows the read
models, not a position of its own, so a run that crashed or was stopped is simply done again by the next.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from eventstore.append import Appender
from projections.guards import LiveMessage
from projections.messages import expired_messages
from schemas.errors import MessageNotFound, MessageWasDeleted, RoomWasDeleted, Unavailable
from schemas.events import EventMetadata
from service.domain.retention import RETENTION_ACTOR, decide_expiry
from service.periodic import Periodic

# Refusals that mean someone else got there first (another instance, the sender, the room's deletion).
_ALREADY_GONE = (MessageWasDeleted, MessageNotFound, RoomWasDeleted)


class RetentionJob:
    """Every `interval` seconds: redact the messages past their room's retention at `clock()`."""

    def __init__(self, pool: asyncpg.Pool, appender: Appender, *, clock: Callable[[], datetime],
                 interval: float = 300.0, batch: int = 200) -> None:
        self._pool, self._appender = pool, appender
        self._clock, self._interval, self._batch = clock, interval, batch
        self._periodic = Periodic("retention", self._step, interval=interval,
                                  expected=(Unavailable, OSError, asyncpg.PostgresError))

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop the background runs (one in progress is cancelled; the next run finishes its work)."""
        await self._periodic.stop()

    async def run_once(self, *, now: datetime) -> tuple[int, int]:
        """Redact one batch of what has expired at `now`: (messages found expired, redactions this run appended)."""
        rows = await expired_messages(self._pool, now=now, limit=self._batch)
        redacted = 0
        for row in rows:
            redacted += await self._redact(row["tenant_id"], row["room_id"], row["message_id"])
        return len(rows), redacted

    async def run_until_done(self, *, now: datetime) -> int:
        """Redact everything expired at `now`, batch after batch; how many redactions this run appended."""
        total = 0
        while True:
            found, redacted = await self.run_once(now=now)
            total += redacted
            if found < self._batch:
                return total

    async def _redact(self, tenant_id: str, room_id: str, message_id: str) -> int:
        try:
            await self._appender.append(
                room_id, [decide_expiry(message_id)], tenant_id=tenant_id,
                metadata=EventMetadata(tenant_id=tenant_id, actor=RETENTION_ACTOR),
                guard=LiveMessage(room_id, message_id, None, deletes=True),
            )
        except _ALREADY_GONE:
            return 0
        return 1

    async def _step(self) -> None:
        await self.run_until_done(now=self._clock())
