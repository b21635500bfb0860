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

import time
from collections.abc import Callable, Iterator
from datetime import datetime

import asyncpg
import msgspec
import structlog
from nats.aio.client import Client as NatsClient

from eventstore._pubacks import AckedPublisher
from eventstore.follower import LogFollower
from eventstore.read import GlobalReader
from schemas.upcasting import upcast_json

log = structlog.get_logger("roomlog.relay")

_RELAY_LOCK = 7_201_003
PUBLISH_ACK_SECONDS = 10.0
# Under load the checkpoint is stored at most this often (a round trip per batch saved); after a crash the
# relay re-publishes at most this much, and JetStream drops those as duplicates. Idle, it is stored at once.
CHECKPOINT_SECONDS = 1.0


class _WireEvent(msgspec.Struct):
    """A RecordedEvent's JSON form (same fields, same order) with the event and metadata as stored.

    Passing the stored JSON through spares decoding every event only to encode it again.
    """

    position: int
    stream_id: str
    seq: int
    tenant_id: str
    created_at: datetime
    event: msgspec.Raw
    metadata: msgspec.Raw


_encoder = msgspec.json.Encoder()


def encode_for_nats(row: asyncpg.Record) -> bytes:
    """The wire form of a committed event, from its `events` row (data and metadata as JSON text)."""
    return _encoder.encode(_WireEvent(
        row["position"], row["stream_id"], row["seq"], row["tenant_id"], row["created_at"],
        msgspec.Raw(upcast_json(row["data"])), msgspec.Raw(row["metadata"]),
    ))


class Relay(LogFollower):
    """Publishes the global log to JetStream while this instance holds the relay lock."""

    def __init__(
        self,
        database_url: str,
        nc: NatsClient,
        subject_for: Callable[[str, str], str],
        *,
        batch_size: int = 1000,
        idle_wait: float = 1.0,
        name: str = "nats",
    ) -> None:
        super().__init__(database_url, lock=_RELAY_LOCK, batch_size=batch_size, idle_wait=idle_wait)
        self._nc = nc
        self._subject_for = subject_for
        self._name = name
        self._publisher: AckedPublisher | None = None
        self._reader = GlobalReader()
        self._saved, self._saved_at = 0, 0.0
        self.published = 0

    async def started_leading(self, conn: asyncpg.Connection) -> None:
        # A lost ack must not stall the relay: time out, and the next round re-publishes (deduplicated).
        self._publisher = AckedPublisher(self._nc, ack_wait=PUBLISH_ACK_SECONDS)
        await self._publisher.start()
        self._reader = GlobalReader(await self._checkpoint(conn))
        self._saved, self._saved_at = self._reader.position, time.monotonic()
        log.info("relay leading", after_position=self._reader.position)

    async def follow_once(self, conn: asyncpg.Connection) -> int:
        assert self._publisher is not None
        reader = self._reader
        rows = await reader.read_rows(conn, limit=self._batch_size)
        if rows:
            await self._publisher.publish_all(self._messages(rows))
            self.published += len(rows)
        if reader.position != self._saved and (not rows or time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS):
            await self._save_checkpoint(conn, reader.position)
            self._saved, self._saved_at = reader.position, time.monotonic()
        return len(rows)

    async def stopped_leading(self) -> None:
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None

    def interrupted(self, exc: Exception) -> None:
        # Database or NATS trouble: the relay comes back from its checkpoint.
        log.warning("relay interrupted, resuming from its checkpoint", error=repr(exc))

    def _messages(self, rows: list[asyncpg.Record]) -> Iterator[tuple[str, bytes, str]]:
        for row in rows:
            yield self._subject_for(row["tenant_id"], row["stream_id"]), encode_for_nats(row), str(row["position"])

    async def _checkpoint(self, conn: asyncpg.Connection) -> int:
        position = await conn.fetchval("SELECT position FROM relay_checkpoints WHERE name = $1", self._name)
        return int(position or 0)

    async def _save_checkpoint(self, conn: asyncpg.Connection, position: int) -> None:
        await conn.execute(
            "INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
            self._name, position,
        )
