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
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import asyncpg
import msgspec
import structlog
from nats.aio.client import Client as NatsClient

from eventstore._pubacks import AckedPublisher
from eventstore.append import NOTIFY_CHANNEL
from eventstore.read import GlobalReader

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
        msgspec.Raw(row["data"]), msgspec.Raw(row["metadata"]),
    ))


class Relay:
    """Tails the log and publishes it; `run()` until cancelled."""

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
        self._database_url = database_url
        self._nc = nc
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
        # A lost ack must not stall the relay: time out, and the next round re-publishes (deduplicated).
        publisher = AckedPublisher(self._nc, ack_wait=PUBLISH_ACK_SECONDS)
        try:
            self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK)
            while not self.is_leader:
                await asyncio.sleep(1.0)  # another instance relays; take over when its lock goes
                self.is_leader = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _RELAY_LOCK)
            await conn.add_listener(NOTIFY_CHANNEL, self._notified)
            await publisher.start()
            reader = GlobalReader(await self._checkpoint(conn))
            saved, saved_at = reader.position, time.monotonic()
            log.info("relay leading", after_position=reader.position)
            while True:
                self._wake.clear()
                rows = await reader.read_rows(conn, limit=self._batch_size)
                if rows:
                    await publisher.publish_all(self._messages(rows))
                    self.published += len(rows)
                if reader.position != saved and (not rows or time.monotonic() - saved_at >= CHECKPOINT_SECONDS):
                    await self._save_checkpoint(conn, reader.position)
                    saved, saved_at = reader.position, time.monotonic()
                if len(rows) < self._batch_size:  # caught up, or at a hole: wait for the next commit
                    # A commit during the read or the publish has set the wake already: no read in vain.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            self.is_leader = False
            await publisher.stop()
            with contextlib.suppress(Exception):
                await conn.close()

    def _notified(self, *args: object) -> None:
        self._wake.set()

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
