"""The metrics that are states, not events: sampled every few seconds from PostgreSQL, JetStream and the pool.

Lags and queue depths are read where they are kept (the relay's checkpoint, the projections' checkpoints,
the consumers' info), so every instance reports the same values whichever one leads the relay.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from eventstore.append import CONNECTION_LOST
from projections.catchup import events_behind
from service.observability.metrics import Metrics
from service.periodic import Periodic
from service.realtime.jetstream import DELIVERIES_STREAM, DELIVERY_PRODUCER, EVENTS_STREAM, WEBHOOK_CONSUMER
from service.realtime.nats_link import NatsLink

log = structlog.get_logger("roomlog.metrics")

# The relay's checkpoint is stored at most once a second under load (eventstore/relay.py), so the lag
# read from it may be up to a second's worth of events high.
_RELAY_LAG = """
SELECT head.position - c.position AS events,
       coalesce(extract(epoch FROM now() - (SELECT created_at FROM events WHERE position > c.position
                                            ORDER BY position LIMIT 1)), 0) AS seconds
FROM (SELECT coalesce(max(position), 0) AS position FROM events) AS head,
     (SELECT coalesce(max(position), 0) AS position FROM relay_checkpoints WHERE name = 'nats') AS c
"""
_DEAD_LETTERS_OPEN = "SELECT count(*) FROM dead_letters WHERE status = 'open'"
_CONSUMERS = ((EVENTS_STREAM, DELIVERY_PRODUCER), (DELIVERIES_STREAM, WEBHOOK_CONSUMER))
_SAMPLE_TIMEOUT = 2.0


class Sampler:
    """Samples the state gauges every `every` seconds until stopped."""

    def __init__(self, metrics: Metrics, pool: asyncpg.Pool, nats: NatsLink, *, every: float) -> None:
        self._metrics = metrics
        self._pool = pool
        self._nats = nats
        # sample() never raises (a source that fails keeps its last values), so the loop needs no error policy.
        self._loop = Periodic("metrics-sampler", self.sample, interval=every)

    def start(self) -> None:
        """Begin sampling in the background."""
        self._loop.start()

    async def stop(self) -> None:
        """End sampling."""
        await self._loop.stop()

    async def sample(self) -> None:
        """Read every state gauge once; a source that does not answer in time keeps its last value."""
        self.sample_pool()
        self._metrics.gc.flush()
        try:
            async with asyncio.timeout(_SAMPLE_TIMEOUT):
                await self._sample_database()
        except (TimeoutError, asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            log.debug("sampling the database failed", error=repr(exc))
        try:
            async with asyncio.timeout(_SAMPLE_TIMEOUT):
                await self._sample_jetstream()
        except Exception as exc:  # NATS away, a consumer not created yet: keep the last values
            log.debug("sampling JetStream failed", error=repr(exc))

    def sample_pool(self) -> None:
        """Pooled connections in use, and tasks waiting for one."""
        m = self._metrics
        m.db_pool_in_use.set(self._pool.get_size() - self._pool.get_idle_size())
        # asyncpg exposes no waiter count; its pool hands out connections through an asyncio.Queue.
        queue = getattr(self._pool, "_queue", None)
        m.db_pool_waiting.set(len(getattr(queue, "_getters", ())))

    async def _sample_database(self) -> None:
        m = self._metrics
        async with self._pool.acquire() as conn:
            lag = await conn.fetchrow(_RELAY_LAG)
            behind = await events_behind(conn)
            open_letters = await conn.fetchval(_DEAD_LETTERS_OPEN)
        assert lag is not None
        m.relay_lag_events.set(lag["events"])
        m.relay_lag_seconds.set(float(lag["seconds"]))
        for name, events in behind.items():
            m.catch_up_lag_events.labels(projection=name).set(events)
        m.dead_letters_open.set(open_letters)

    async def _sample_jetstream(self) -> None:
        client = self._nats.client
        if client is None or not self._nats.connected:
            return
        js = client.jetstream()
        m = self._metrics
        for stream, consumer in _CONSUMERS:
            info = await js.consumer_info(stream, consumer)
            m.consumer_pending.labels(consumer=consumer).set(info.num_pending or 0)
            m.consumer_ack_pending.labels(consumer=consumer).set(info.num_ack_pending or 0)
            m.consumer_redelivered.labels(consumer=consumer).set(info.num_redelivered or 0)
