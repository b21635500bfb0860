"""Rate limits that hold across every service instance: requests per tenant, message sends per user.

Windows. Fixed one-second windows aligned to epoch seconds (`window = int(time.time())`). A key —
`t:<tenant>` for a tenant's requests, `s:<tenant>:<user>` for one user's sends — may use `limit`
tokens per window, counted over all instances together.

Shared state. PostgreSQL, the UNLOGGED table `rate_windows (key, window_start, used)`: one row per key,
reused window after window (a crash may lose a second's counts, which is harmless; rows idle for a
minute are swept). Chosen over NATS KV because every instance already holds a database pool, and the
leases below make the shared store cold — it is touched once per chunk of requests, not once per
request — so a second store on the request path would buy nothing (and NATS KV would need a
compare-and-set retry loop for what one upsert does atomically).

Leases. An instance takes tokens from the shared counter in chunks of `max(1, limit // LEASES_PER_WINDOW)` (a
quarter of the limit) with ONE
atomic statement per lease: an upsert that locks the key's row, so concurrent leases from any number
of instances serialise on it. `used` counts the tokens *asked for* in the window, so the count before
this lease is exactly `used - chunk`, and the lease grants `clamp(limit - (used - chunk), 0, chunk)`.
Granted tokens therefore sum to at most `limit` per window, whatever the number of instances: the
combined rate never exceeds the limit. Requests are served from the instance's local lease — a dict
lookup and an integer compare, no I/O; a request waits for the database only when its instance's
lease for the key is used up (one lease at a time per key; requests arriving meanwhile wait for it).
A key used less than once a second needs a lease per use, so leases for different keys asked for at
the same moment go out together in one statement (`GroupLease`, like the appender's group commit).

Exhaustion. A lease that grants fewer tokens than asked means the window is spent everywhere; the
instance remembers that and refuses the key without I/O until the window ends, so an overload does not
hammer the database.

The price: tokens an instance leased but did not use before the window ended are lost, so the
effective limit may fall short of `limit` by up to (instances x chunk) per window — it is never
exceeded. `X-RateLimit-Remaining` is an estimate: `limit` minus the tokens taken over all instances as
of this instance's last lease, plus the tokens still unused in its own lease. If the shared counter
cannot be reached, an instance admits a chunk of requests before trying again and logs a warning (fail
open: the service cannot work without its database anyway).

Limits. `tenants.rate_limit` and `tenants.send_rate_limit` (NULL: the configured default, 0: unlimited
— no check, no database) are cached per tenant for a few seconds, so a change made through the
tenant-settings API applies everywhere within that time. The platform admin is never limited.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg
import msgspec
import structlog

from eventstore.append import CONNECTION_LOST
from schemas.errors import RateLimited
from service.identity.auth import AUTH_CACHE_SECONDS, Principal, TtlCache
from service.observability.metrics import Metrics

log = structlog.get_logger("roomlog.ratelimit")

Clock = Callable[[], float]
# Where the decision that applies to a request waits for the middleware that turns it into headers.
STATE_KEY = "ratelimit"
# Leases per window and key: bigger slices mean fewer database round trips (a per-user limit of 20/s
# leased 1 token at a time cost one per send). The total leased never exceeds the limit whatever the
# slice; a slice only decides how many tokens one instance may hold unused while another is refused.
LEASES_PER_WINDOW = 4
LEASE_TIMEOUT_SECONDS = 2.0
# Rows of keys idle this long are deleted (an instance sweeps at most this often), so users who sent once
# do not stay in the table forever.
SWEEP_SECONDS = 60

# One statement leases for many keys. Rows are locked in key order, so two instances' statements over
# overlapping keys cannot deadlock; each key appears at most once (an upsert may not touch a row twice).
_LEASE = """
INSERT INTO rate_windows AS w (key, window_start, used)
SELECT key, window_start, chunk FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS t (key, window_start, chunk)
ORDER BY key
ON CONFLICT (key) DO UPDATE SET
    used = CASE WHEN w.window_start = EXCLUDED.window_start THEN w.used + EXCLUDED.used
                WHEN w.window_start < EXCLUDED.window_start THEN EXCLUDED.used
                ELSE w.used END,
    window_start = GREATEST(w.window_start, EXCLUDED.window_start)
RETURNING key, window_start, used
"""


class Decision(msgspec.Struct, frozen=True, gc=False):
    """The outcome of counting one request against a limit (a Struct: made on every request, it must be cheap)."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # the epoch second at which the window ends


class LeaseRequest(NamedTuple):
    key: str
    window: int
    chunk: int
    limit: int


class Lease(NamedTuple):
    granted: int
    taken: int  # tokens taken from the window over all instances, this lease included (at most the limit)


async def lease_many(db: asyncpg.Pool | asyncpg.Connection, requests: Sequence[LeaseRequest]) -> dict[str, Lease]:
    """Take up to `chunk` of the `limit` tokens of each key's window from the shared counter, atomically per key."""
    rows = await db.fetch(
        _LEASE, [r.key for r in requests], [r.window for r in requests], [r.chunk for r in requests],
        timeout=LEASE_TIMEOUT_SECONDS,
    )
    after = {row["key"]: (row["window_start"], row["used"]) for row in rows}
    return {r.key: _granted(r, *after[r.key]) for r in requests}


async def lease(db: asyncpg.Pool | asyncpg.Connection, key: str, window: int, *, chunk: int, limit: int) -> Lease:
    """`lease_many` for one key."""
    return (await lease_many(db, [LeaseRequest(key, window, chunk, limit)]))[key]


def _granted(request: LeaseRequest, window: int, asked: int) -> Lease:
    if window != request.window:
        # Another instance already counts a later window: this clock lags, and its window is over.
        return Lease(0, request.limit)
    # `used` counts tokens asked for, this lease's included: what was asked before it is exact.
    before = asked - request.chunk
    return Lease(max(0, min(request.chunk, request.limit - before)), min(request.limit, asked))


class GroupLease:
    """Leases asked for while one statement is in flight go out together in the next (like group commit)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[LeaseRequest, asyncio.Future[Lease]]] = []
        self._task: asyncio.Task[None] | None = None

    async def lease(self, request: LeaseRequest) -> Lease:
        """Lease for one key, sharing a statement with the other keys waiting now."""
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rate-limit-leases")
        return await future

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch: dict[str, tuple[LeaseRequest, asyncio.Future[Lease]]] = {}
                later = []
                for item in self._waiting:
                    if item[0].key in batch:
                        later.append(item)  # a key goes once per statement
                    else:
                        batch[item[0].key] = item
                self._waiting = later
                await self._send(batch)
        finally:
            self._task = None

    async def _send(self, batch: dict[str, tuple[LeaseRequest, asyncio.Future[Lease]]]) -> None:
        try:
            leases = await lease_many(self._pool, [request for request, _ in batch.values()])
        except Exception as exc:
            for _, future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for key, (_, future) in batch.items():
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(leases[key])


def chunk_for(limit: int) -> int:
    """How many tokens one lease asks for."""
    return max(1, limit // LEASES_PER_WINDOW)


def retry_after(decision: Decision, now: float) -> int:
    """Whole seconds until the decision's window ends (at least 1)."""
    return max(1, math.ceil(decision.reset - now))


def header_pairs(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The X-RateLimit-* response headers describing a decision."""
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset).encode()),
    ]


class _Bucket:
    """One key's share of the current window on this instance."""

    __slots__ = ("base", "lock", "spent", "tokens", "window")

    def __init__(self) -> None:
        self.window = -1
        self.tokens = 0  # leased and not yet used
        self.base = 0  # limit minus the tokens taken over all instances as of the last lease
        self.spent = False  # the window has nothing left anywhere
        self.lock = asyncio.Lock()


class Windows:
    """Tokens per key and one-second window, leased in chunks from the shared `rate_windows` counter."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Clock = time.time, max_keys: int = 100_000) -> None:
        self._pool = pool
        self._leases = GroupLease(pool)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self._next_sweep = 0
        self.sweeping: asyncio.Task[None] | None = None

    def take_local(self, key: str, limit: int) -> Decision | None:
        """Count one use of `key` from this instance's lease; None when only a new lease can tell."""
        bucket = self._buckets.get(key)
        if bucket is None or bucket.window != int(self._clock()):
            return None
        return _take(bucket, limit)

    async def take(self, key: str, limit: int) -> Decision:
        """Count one use of `key`, leasing from the shared counter when the local lease is used up."""
        decision = self.take_local(key, limit)
        if decision is not None:
            return decision
        bucket = self._buckets.get(key) or self._new_bucket(key)
        async with bucket.lock:
            window = int(self._clock())
            if bucket.window == window and (decision := _take(bucket, limit)) is not None:
                return decision  # another request refilled the lease while this one waited
            await self._refill(bucket, key, window, limit)
            decision = _take(bucket, limit)
        # A fresh lease either holds tokens or marks the window spent.
        assert decision is not None
        return decision

    async def _refill(self, bucket: _Bucket, key: str, window: int, limit: int) -> None:
        chunk = chunk_for(limit)
        try:
            got = await self._leases.lease(LeaseRequest(key, window, chunk, limit))
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            # Fail open: the limit protects the service, and without its database the service cannot
            # work anyway. One chunk is admitted before the database is asked again.
            log.warning("rate limit lease failed; admitting one chunk", key=key, error=repr(exc))
            got = Lease(chunk, chunk)
        bucket.window = window
        bucket.tokens = got.granted
        bucket.base = max(0, limit - got.taken)
        bucket.spent = got.granted < chunk
        if window >= self._next_sweep:
            self._next_sweep = window + SWEEP_SECONDS
            self.sweeping = asyncio.create_task(self._sweep(window - SWEEP_SECONDS), name="rate-windows-sweep")

    async def _sweep(self, before: int) -> None:
        try:
            await self._pool.execute("DELETE FROM rate_windows WHERE window_start < $1", before)
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            log.warning("sweeping old rate windows failed", error=repr(exc))

    def _new_bucket(self, key: str) -> _Bucket:
        if len(self._buckets) >= self._max_keys:
            window = int(self._clock())
            self._buckets = {
                k: b for k, b in self._buckets.items() if b.window >= window or b.lock.locked()
            }
        bucket = self._buckets[key] = _Bucket()
        return bucket


def _take(bucket: _Bucket, limit: int) -> Decision | None:
    if bucket.tokens > 0:
        bucket.tokens -= 1
        return Decision(True, limit, bucket.base + bucket.tokens, bucket.window + 1)
    if bucket.spent:
        return Decision(False, limit, 0, bucket.window + 1)
    return None


@dataclass(frozen=True, slots=True)
class TenantLimits:
    requests: int  # per second for the whole tenant; 0 = unlimited
    sends: int  # messages per second per user; 0 = unlimited
    request_key: str


class RateLimiter:
    """The per-tenant request limit and the per-user send limit, as one service instance applies them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        default_requests: int,
        default_sends: int,
        clock: Clock = time.time,
        cache_seconds: float = AUTH_CACHE_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        self.windows = Windows(pool, clock=clock)
        self._pool = pool
        self._clock = clock
        self._defaults = (default_requests, default_sends)
        self._rejected = metrics.rate_limit_of if metrics is not None else {}
        self.tenants: TtlCache[str, TenantLimits] = TtlCache(self._load, ttl=cache_seconds)

    async def admit_request(self, principal: Principal, state: dict[str, Any]) -> None:
        """Count a request against its tenant's limit and note the decision in `state`; 429 when spent."""
        if principal.role == "platform":
            return
        limits = await self.tenants.get(principal.tenant_id)
        if limits.requests == 0:
            return
        decision = self.windows.take_local(limits.request_key, limits.requests)
        if decision is None:
            decision = await self.windows.take(limits.request_key, limits.requests)
        state[STATE_KEY] = decision
        if not decision.allowed:
            raise self._refused(decision, "requests")

    async def admit_send(self, principal: Principal, state: dict[str, Any]) -> None:
        """Count a message send against the sender's limit; 429 when spent.

        The response's headers then describe whichever limit — tenant requests or the user's sends —
        has fewer requests left (the refusing one on a 429).
        """
        if principal.role == "platform":
            return
        limits = await self.tenants.get(principal.tenant_id)
        if limits.sends == 0:
            return
        decision = await self.windows.take(f"s:{principal.tenant_id}:{principal.user_id}", limits.sends)
        current: Decision | None = state.get(STATE_KEY)
        if not decision.allowed or current is None or decision.remaining < current.remaining:
            state[STATE_KEY] = decision
        if not decision.allowed:
            raise self._refused(decision, "sends")

    def forget(self, tenant_id: str) -> None:
        """Reload the tenant's limits on its next request (other instances: within the cache time)."""
        self.tenants.forget(tenant_id)

    def _refused(self, decision: Decision, limit: str) -> RateLimited:
        if limit in self._rejected:
            self._rejected[limit].inc()
        seconds = retry_after(decision, self._clock())
        return RateLimited(f"Rate limit exceeded. Try again in {seconds} seconds", retry_after=seconds)

    async def _load(self, tenant_id: str) -> TenantLimits:
        row = await self._pool.fetchrow(
            "SELECT rate_limit, send_rate_limit FROM tenants WHERE tenant_id = $1", tenant_id
        )
        requests, sends = self._defaults
        if row is not None:
            requests = requests if row["rate_limit"] is None else row["rate_limit"]
            sends = sends if row["send_rate_limit"] is None else row["send_rate_limit"]
        return TenantLimits(requests=requests, sends=sends, request_key=f"t:{tenant_id}")
