"""Everything a running service instance holds: the database pool, the appender, NATS, the clock."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from eventstore import Appender, ReadPools, migrate, open_replicas
from projections import InlineProjections, ensure_projections
from projections.catchup import CatchUp
from schemas.config import Settings
from service.commands.retention import RetentionJob
from service.commands.support.auto_close import AutoClose
from service.consumers.egress import OutboundHttp, Resolver
from service.consumers.sla_timer import BreachTimer
from service.identity.accounts import Accounts
from service.identity.auth import Authenticator
from service.identity.passwords import Passwords
from service.identity.tokens import TokenSigner, parse_keys, stored_signing_keys
from service.media.cleanup import MediaCleanup
from service.media.lookup import ConfirmedMedia
from service.media.store import ObjectStore
from service.observability.metrics import Metrics
from service.observability.sampler import Sampler
from service.ratelimit.limiter import RateLimiter
from service.realtime.delivery import Realtime
from service.realtime.nats_link import NatsLink

log = structlog.get_logger("roomlog.runtime")

Clock = Callable[[], float]


class PooledConnection(asyncpg.Connection):
    """A pool connection released without the default reset query (a round trip on every release).

    roomlog leaves no session state behind on pooled connections: advisory locks are released and
    `search_path` is reset by the code that set them, and LISTEN runs on dedicated connections. An
    open transaction is still rolled back by asyncpg on release.
    """

    def get_reset_query(self) -> str:
        return ""


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    appender: Appender
    auth: Authenticator
    nats: NatsLink
    realtime: Realtime
    limiter: RateLimiter
    catch_up: CatchUp
    passwords: Passwords
    accounts: Accounts
    # Reads of history: a caught-up standby of DATABASE_REPLICA_URLS, else `pool` (eventstore/replicas.py).
    reads: ReadPools
    metrics: Metrics
    sampler: Sampler | None
    # Name lookups for webhook registration checks, on threads of their own (see consumers/egress.py).
    resolver: Resolver = field(default_factory=Resolver)
    # Calls to tenants' integrations (quick actions), checked against the same public-address rule.
    outbound: OutboundHttp = field(init=False)
    # The object store for media; None when no S3 URL is configured (media routes answer 503).
    media: ObjectStore | None = None
    media_cleanup: MediaCleanup | None = None
    # The confirmed uploads that sends attach, one query for the sends waiting at once.
    confirmed_media: ConfirmedMedia = field(init=False)
    retention: RetentionJob | None = None
    auto_close: AutoClose | None = None  # solved tickets closing by themselves
    # One lock per tenant for taking ticket numbers: this instance's creators queue instead of racing for the
    # tenant's counter (other instances' are retried at its expected seq).
    ticket_number_locks: dict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    # Records SLA at-risk and breach events when they fall due (service/consumers/sla_timer.py).
    sla_timer: BreachTimer | None = None
    monotonic: Clock = time.monotonic
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    started_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.confirmed_media = ConfirmedMedia(self.pool)
        self.outbound = OutboundHttp(self.resolver, public_only=not self.settings.webhook_allow_private)



async def prepare_database(database_url: str) -> None:
    """Apply the log's migrations and build any projection that is missing or of an old version."""
    conn = await asyncpg.connect(database_url)
    try:
        applied = await migrate(conn)
        if applied:
            log.info("migrations applied", migrations=applied)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        rebuilt = await ensure_projections(pool)
        if rebuilt:
            log.info("projections built", projections=rebuilt)
    finally:
        await pool.close()


async def start_runtime(settings: Settings) -> Runtime:
    """Connect to PostgreSQL and NATS and start the appender; the database must be migrated already."""
    if settings.database_url is None:
        raise ValueError("database_url is required")
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=min(2, settings.db_pool_size), max_size=settings.db_pool_size,
        connection_class=PooledConnection,
    )
    metrics = Metrics(enabled=settings.metrics)
    appender = Appender(
        pool, InlineProjections(), writers=settings.append_writers, max_batch=settings.append_max_batch,
        on_batch=metrics.observe_batch if metrics.enabled else None,
    )
    appender.start()
    keys = parse_keys(settings.jwt_keys) if settings.jwt_keys else await stored_signing_keys(pool)
    auth = Authenticator(
        pool, TokenSigner(keys, issuer=settings.jwt_issuer), platform_admin_key=settings.platform_admin_key
    )
    link = NatsLink(settings.nats_url)
    await link.start()
    realtime = Realtime(settings, link, pool, appender, metrics, signer=auth.signer)
    realtime.start()
    limiter = RateLimiter(
        pool, default_requests=settings.default_rate_limit, default_sends=settings.default_send_rate_limit,
        metrics=metrics,
    )
    catch_up = CatchUp(settings.database_url)
    catch_up.start()
    passwords = Passwords()
    reads = ReadPools(pool, await open_replicas(settings.database_replica_urls, max_size=settings.db_pool_size))
    sampler = Sampler(metrics, pool, link, every=settings.metrics_sample_seconds) if metrics.enabled else None
    if sampler is not None:
        sampler.start()
        metrics.gc.install()
    retention = RetentionJob(pool, appender, clock=lambda: datetime.now(UTC),
                             interval=settings.retention_interval_seconds)
    retention.start()
    media = expiry = None
    if settings.s3_url is not None:
        media = ObjectStore(settings)
        await media.start()
        expiry = MediaCleanup(pool, appender, media, clock=lambda: datetime.now(UTC))
        expiry.start()
    auto_close = AutoClose(pool, appender, clock=lambda: datetime.now(UTC),
                           interval=settings.support_auto_close_seconds)
    auto_close.start()
    sla_timer = BreachTimer(pool, appender, settings.database_url)
    await sla_timer.start()
    return Runtime(
        settings=settings, pool=pool, appender=appender, auth=auth, nats=link, realtime=realtime, limiter=limiter,
        catch_up=catch_up, passwords=passwords, accounts=Accounts(pool, auth, settings, passwords=passwords),
        reads=reads, metrics=metrics, sampler=sampler, media=media, media_cleanup=expiry, retention=retention,
        auto_close=auto_close, sla_timer=sla_timer,
    )


async def stop_runtime(runtime: Runtime) -> None:
    """Tell WebSocket clients to reconnect elsewhere, drain the appender, then close NATS and the pool.

    Each step is bounded: a dependency that does not answer (NATS or the store gone, a lock held elsewhere)
    is logged and skipped, so a stop always ends.
    """
    if runtime.sampler is not None:
        runtime.metrics.gc.uninstall()
        await _bounded("metrics sampler", runtime.sampler.stop())
    await _bounded("real-time delivery", runtime.realtime.stop())
    if runtime.media_cleanup is not None:
        await _bounded("media cleanup", runtime.media_cleanup.stop())
    if runtime.retention is not None:
        await _bounded("retention", runtime.retention.stop())
    if runtime.auto_close is not None:
        await _bounded("ticket auto-close", runtime.auto_close.stop())
    if runtime.sla_timer is not None:
        await _bounded("sla breach timer", runtime.sla_timer.stop())
    await _bounded("appender", runtime.appender.stop())
    # After the last appends: a clean stop leaves the search index current.
    await _bounded("catch-up projections", runtime.catch_up.stop())
    await _bounded("nats", runtime.nats.close())
    await _bounded("read replicas", runtime.reads.close())
    if runtime.media is not None:
        await _bounded("object store", runtime.media.close())
    await _bounded("database pool", runtime.pool.close())
    await _bounded("outbound calls", runtime.outbound.close())
    runtime.resolver.close()
    runtime.passwords.close()
    runtime.metrics.close()


STOP_STEP_SECONDS = 30.0


async def _bounded(what: str, step: Coroutine[Any, Any, None]) -> None:
    # asyncio.wait, not wait_for: a step that swallows its cancellation must not hold the stop up either.
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=STOP_STEP_SECONDS)
    if not done:
        task.cancel()
        log.warning("stopping took too long; going on without it", step=what, seconds=STOP_STEP_SECONDS)
    elif task.exception() is not None:
        log.warning("stopping failed; going on", step=what, error=repr(task.exception()))
