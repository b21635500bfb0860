"""The relay: publishes every committed event to JetStream, in log order, from a stored checkpoint.

One instance at a time is the relay (a PostgreSQL advisory lock held on its listening connection
decides; the others wait to take over). It follows the global log with the GlobalReader, so a late
commit is never skipped, publishes each event with `Nats-Msg-Id` = its position (JetStream drops a
re-publish within the duplicate window), and stores its checkpoint only after JetStream acked.
`LISTEN` on the appender's channel wakes it as soon as a batch commits.

Publishing only from the relay (not also from the request path) keeps NATS in log order, so every
room's events reach consumers in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import msgspec
import structlog
from nats.js import JetStreamContext

from eventstore.append import NOTIFY_CHANNEL
from eventstore.read import GlobalReader
from schemas.events import RecordedEvent

log = structlog.get_logger("roomlog.relay")

_RELAY_LOCK = 7_201_003
PUBLISH_ACK_SECONDS = 10.0
_encoder = msgspec.json.Encoder()


def encode_for_nats(event: RecordedEvent) -> bytes:
    """The wire form of a committed event."""
    return _encoder.encode(event)


class Relay:
    """Tails the log and publishes it; `run()` until cancelled."""

    def __init__(
        self,
        database_url: str,
        js: JetStreamContext,
        subject_for: Callable[[RecordedEvent], str],
        *,
        batch_size: int = 1000,
        idle_wait: float = 1.0,
        name: str = "nats",
    ) -> None:
        self._database_url = database_url
        self._js = js
        self._subject_for = subject_for
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._name = name
        self._wake = asyncio.Event()
        self.is_leader = False
        self.published = 0

    async def run(self) -> None:
        """Hold the relay lock (waiting while another instance has it), then publish forever."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database or NATS trouble: the relay must come back, not die quietly
                log.warning("relay interrupted, resuming from its checkpoint", error=repr(exc))
                self.is_leader = False
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK)
            while not self.is_leader:
                await asyncio.sleep(1.0)  # another instance relays; take over when its lock goes
                self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK)
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            reader = GlobalReader(await self._checkpoint(conn))
            log.info("relay leading", after_position=reader.position)
            while True:
                self._wake.clear()
                events = await reader.read(conn, limit=self._batch_size)
                if events:
                    await self._publish(events)
                    await self._save_checkpoint(conn, reader.position)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            self.is_leader = False
            with contextlib.suppress(Exception):
                await conn.close()

    def _notified(self, *args: object) -> None:
        self._wake.set()

    async def _publish(self, events: list[RecordedEvent]) -> None:
        acks = [
            await self._js.publish_async(
                self._subject_for(e), encode_for_nats(e), headers={"Nats-Msg-Id": str(e.position)}
            )
            for e in events
        ]
        # A lost ack must not stall the relay: time out, and the next round re-publishes (deduplicated).
        await asyncio.wait_for(asyncio.gather(*acks), PUBLISH_ACK_SECONDS)
        self.published += len(events)

    async def _checkpoint(self, conn: asyncpg.Connection) -> int:
        position = await conn.fetchval("SELECT position FROM relay_checkpoints WHERE name = $1", self._name)
        return int(position or 0)

    async def _save_checkpoint(self, conn: asyncpg.Connection, position: int) -> None:
        await conn.execute(
            "INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            self._name, position,
        )
