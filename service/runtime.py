"""Everything a running service instance holds: the database pool, the appender, NATS, the clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import nats
import structlog
from nats.aio.client import Client as NatsClient

from eventstore import Appender, migrate
from projections import InlineProjections, ensure_projections
from projections.catchup import CatchUp
from schemas.config import Settings
from service.auth import Authenticator
from service.ratelimit import RateLimiter
from service.realtime import Realtime
from service.tokens import TokenSigner, parse_keys, stored_signing_keys

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
    monotonic: Clock = time.monotonic
    started_at: float = field(default_factory=time.monotonic)



class NatsLink:
    """The NATS connection; when NATS is down at start-up it keeps trying in the background."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.client: NatsClient | None = None
        self.ready = asyncio.Event()
        # Called after the client reconnected by itself: plain subscriptions missed what came meanwhile.
        self.on_reconnected: list[Callable[[], Awaitable[None]]] = []
        # Called when the connection is lost (the client then keeps reconnecting by itself).
        self.on_disconnected: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def start(self) -> None:
        """Connect now if possible, else start retrying in the background."""
        if self.url is None:
            return
        if not await self._try_connect():
            self._task = asyncio.create_task(self._keep_trying(), name="nats-connect")

    async def close(self) -> None:
        """Stop retrying and close the connection."""
        if self._task is not None:
            self._task.cancel()
        if self.client is None or self.client.is_closed:
            return
        try:
            await asyncio.wait_for(self.client.close(), CLOSE_SECONDS)
        except (TimeoutError, OSError, RuntimeError, nats.errors.Error) as exc:
            # With NATS gone, nats-py fails flushing what it still had pending into the dead transport
            # (RuntimeError from uvloop): nothing is lost that the log does not keep, so stop anyway.
            log.warning("closing the nats connection failed", error=repr(exc))

    async def _reconnected(self) -> None:
        log.info("nats reconnected")
        for callback in self.on_reconnected:
            await callback()

    async def _disconnected(self) -> None:
        for callback in self.on_disconnected:
            await callback()

    async def _keep_trying(self) -> None:
        connected = False
        while not connected:
            await asyncio.sleep(1.0)
            connected = await self._try_connect()

    async def _try_connect(self) -> bool:
        assert self.url is not None
        servers = [u.strip() for u in self.url.split(",") if u.strip()]  # a cluster's servers, comma-separated
        # nats-py retries a first connect for ever when told to reconnect for ever: only connect to a
        # server that answers, so the service starts (degraded) while NATS is away.
        if not await _any_reachable(servers):
            log.warning("nats not reachable, retrying", servers=servers)
            return False
        client = NatsClient()
        try:
            # After the first connect, the client reconnects by itself for as long as it takes.
            await asyncio.wait_for(client.connect(
                servers, name="roomlog", max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2,
                reconnected_cb=self._reconnected, disconnected_cb=self._disconnected, error_cb=self._error,
            ), FIRST_CONNECT_SECONDS)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            log.warning("nats not reachable, retrying", error=str(exc) or type(exc).__name__)
            with contextlib.suppress(Exception):
                await client.close()
            return False
        self.client = client
        self.ready.set()
        return True

    async def _error(self, exc: Exception) -> None:
        # One line per problem: nats-py's default prints a traceback for every reconnect attempt.
        log.warning("nats connection problem", error=str(exc) or type(exc).__name__)


FIRST_CONNECT_SECONDS = 10.0
CLOSE_SECONDS = 5.0


async def _any_reachable(servers: list[str]) -> bool:
    for server in servers:
        url = urlsplit(server if "://" in server else f"nats://{server}")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 4222), 2.0
            )
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


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
    appender = Appender(
        pool, InlineProjections(), writers=settings.append_writers, max_batch=settings.append_max_batch
    )
    appender.start()
    keys = parse_keys(settings.jwt_keys) if settings.jwt_keys else await stored_signing_keys(pool)
    auth = Authenticator(
        pool, TokenSigner(keys, issuer=settings.jwt_issuer), platform_admin_key=settings.platform_admin_key
    )
    link = NatsLink(settings.nats_url)
    await link.start()
    realtime = Realtime(settings, link, pool, appender)
    realtime.start()
    limiter = RateLimiter(
        pool, default_requests=settings.default_rate_limit, default_sends=settings.default_send_rate_limit
    )
    catch_up = CatchUp(settings.database_url)
    catch_up.start()
    return Runtime(
        settings=settings, pool=pool, appender=appender, auth=auth, nats=link, realtime=realtime, limiter=limiter,
        catch_up=catch_up,
    )


async def stop_runtime(runtime: Runtime) -> None:
    """Tell WebSocket clients to reconnect elsewhere, drain the appender, then close NATS and the pool."""
    await runtime.realtime.stop()
    await runtime.appender.stop()
    await runtime.catch_up.stop()  # after the last appends: a clean stop leaves the search index current
    await runtime.nats.close()
    await asyncio.wait_for(runtime.pool.close(), 10)
