"""Presence across the cluster, with work per instance that grows with the users it serves and watches.

Liveness is ephemeral and lives in the NATS KV bucket `roomlog_presence` (one value per key, dropped after
`presence_memory_seconds` unwritten), two keys per user, each written only by an instance that serves the user:
- `a.<tenant>.<user>`: when the user was last active (an authenticated call or a WebSocket frame), written at
  most once per `presence_flush_seconds` by compare-and-set, never replacing a later time another instance wrote;
- `s.<tenant>.<user>`: `{"on": [instance ids], "closed": t}`, the instances holding an open WebSocket of the
  user and when the last one closed, changed (compare-and-set) only when an instance's first socket of the user
  opens or its last one closes;
- `i.<instance>`: until when that instance's sockets count as open: one lease per instance, renewed every flush
  whatever the number of its users, so a crashed instance's sockets lapse within `LEASE_FLUSHES` flushes.
The status a user chose is an event in their stream (`presence.status_set`, read model `presence_statuses`).

Changes travel on `rlp.<tenant>.<user>` as the `UserPresence` others see. The instance that serves a user
publishes on a change it can see (first activity, a socket opened or closed, idle or gone for long enough, a
status set, a status lapsing); the hub subscribes to a user's subject only while one of its clients shares a
room with that user. No instance ever learns about users it neither serves nor watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from projections.presence import chosen_statuses
from schemas.presence import Liveness, UserPresence
from service.domain.presence import AWAY_AFTER_SECONDS, Explicit, automatic_status, shown
from service.realtime.jetstream import presence_bucket, user_presence_subject

log = structlog.get_logger("roomlog.presence")
# How long a stopping instance tries to end its lease early (see stop()).
_STOP_WRITE_SECONDS = 1.0

UserKey = tuple[str, str]  # (tenant_id, user_id)
# A lease outlives two missed renewals, so one slow flush never shows an open socket as closed.
LEASE_FLUSHES = 3
# Bucket requests in flight at once: a flush of tens of thousands of users must not flood the connection.
BATCH = 500

_float = msgspec.json.Decoder(float)
_encoder = msgspec.json.Encoder()


class _Sockets(msgspec.Struct, forbid_unknown_fields=False):
    """An `s.` value: the instances with an open WebSocket of the user, and when the last one closed."""

    on: list[str] = []
    closed: float | None = None


_sockets = msgspec.json.Decoder(_Sockets)


@dataclass(slots=True)
class _Local:
    """A user this instance serves: what it saw, wrote and last told the cluster."""

    last_active: float | None = None
    written_active: float | None = None
    active_revision: int | None = None  # the `a.` value's revision as this instance last wrote or read it
    sockets: int = 0
    socket_closed: float | None = None
    registered: float | None = None  # when this instance last wrote itself into the user's `s.` value
    auto: str | None = None  # the automatic status as this instance alone sees it, at the last check
    told: UserPresence | None = None


class Presence:
    """This instance's side of the cluster's presence: it records its users' activity and tells their changes."""

    def __init__(
        self, pool: asyncpg.Pool, *, clock: Callable[[], float] = time.time, flush_seconds: float = 10.0,
        memory_seconds: float = 86_400.0, instance_id: str | None = None,
    ) -> None:
        self.clock = clock
        self.instance_id = instance_id or secrets.token_hex(8)
        self._leases: dict[str, float] = {}  # other instances' socket leases as last read: until
        self._lease_read: dict[str, float] = {}  # when each was read
        self._lease_reads: dict[str, asyncio.Future[float | None]] = {}
        self._pool = pool
        self._flush_seconds = flush_seconds
        self._memory_seconds = memory_seconds
        self._local: dict[UserKey, _Local] = {}
        self._urgent: set[UserKey] = set()
        self._lapses: dict[UserKey, float] = {}  # chosen statuses set here, by when they lapse
        self._wake = asyncio.Event()
        self._nc: NatsClient | None = None
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None
        self._lease_written: float | None = None
        self.published = 0

    # --- what the instance sees ------------------------------------------------------------------
    def seen(self, tenant_id: str, user_id: str) -> None:
        """The user made an authenticated call or sent a frame here (cheap: the flush writes it)."""
        key = (tenant_id, user_id)
        local = self._local.get(key)
        if local is None:
            local = self._local[key] = _Local()
        if local.auto != "online":  # first sight, or back from idle: tell at once, not at the next flush
            self._urgent.add(key)
            self._wake.set()
        local.last_active = self.clock()

    async def connected(self, tenant_id: str, user_id: str) -> None:
        """A WebSocket of the user opened on this instance."""
        key = (tenant_id, user_id)
        self.seen(tenant_id, user_id)
        local = self._local[key]
        local.sockets += 1
        if local.sockets == 1:
            await self._register_now(key, local)

    async def disconnected(self, tenant_id: str, user_id: str) -> None:
        """A WebSocket of the user closed on this instance; the last one is written closed at once."""
        key = (tenant_id, user_id)
        local = self._local.get(key)
        if local is None or local.sockets == 0:
            return
        local.sockets -= 1
        if local.sockets == 0:
            local.socket_closed = self.clock()
            await self._register_now(key, local)
            self._urgent.add(key)
            self._wake.set()

    def lapses(self, tenant_id: str, user_id: str, at: float | None) -> None:
        """A chosen status of the user lapses at `at`: tell the change then (None: it no longer lapses)."""
        if at is None:
            self._lapses.pop((tenant_id, user_id), None)
        else:
            self._lapses[(tenant_id, user_id)] = at

    # --- what the cluster knows --------------------------------------------------------------------
    async def liveness(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Liveness]:
        """Each user's activity as the bucket holds it, merged with what this instance saw since its last flush."""
        found: list[Liveness] = []
        for start in range(0, len(user_ids), BATCH):
            found += await asyncio.gather(*(self._read(tenant_id, u) for u in user_ids[start:start + BATCH]))
        return dict(zip(user_ids, found, strict=True))

    async def _lease_of(self, instance_id: str) -> float | None:
        """Until when an instance's sockets count as open (None: it has no lease); read once per lease."""
        if instance_id == self.instance_id:
            return self._lease_written
        now = self.clock()
        until = self._leases.get(instance_id)
        # Read again once the lease known ran out, and a lapsed one at most once a flush.
        if (until is not None and until > now) or now - self._lease_read.get(instance_id, -1e18) < self._flush_seconds:
            return until
        if self._kv is None:
            return until
        # Concurrent readers (a batch of users on that instance) wait for the one read under way.
        reading = self._lease_reads.get(instance_id)
        if reading is None:
            reading = self._lease_reads[instance_id] = asyncio.ensure_future(self._read_lease(instance_id, now))
            reading.add_done_callback(lambda _: self._lease_reads.pop(instance_id, None))
        return await asyncio.shield(reading)

    async def _read_lease(self, instance_id: str, now: float) -> float | None:
        assert self._kv is not None
        try:
            entry = await self._kv.get(f"i.{instance_id}")
        except KeyNotFoundError:
            self._leases.pop(instance_id, None)
            entry = None
        except (NatsError, TimeoutError) as exc:  # NATS away: the lease as last read, read again next time
            log.warning("presence bucket unreadable", error=repr(exc))
            return self._leases.get(instance_id)
        self._lease_read[instance_id] = now
        if entry is not None and entry.value:
            with contextlib.suppress(msgspec.DecodeError):
                self._leases[instance_id] = _float.decode(entry.value)
        return self._leases.get(instance_id)

    async def _resolve(self, live: Liveness, sockets: _Sockets | None) -> None:
        """Fold an `s.` value into `live`: its sockets are open until the latest lease of the instances holding
        them; a lapsed lease (a crashed instance) ends them when it ran out."""
        if sockets is None:
            return
        leases = [until for until in [await self._lease_of(i) for i in sockets.on] if until is not None]
        live.socket_until = _latest(live.socket_until, max(leases, default=None))
        if not sockets.on or not leases:
            live.socket_closed = _latest(live.socket_closed, sockets.closed)

    async def presences(self, tenant_id: str, user_ids: Sequence[str]) -> list[UserPresence]:
        """What everyone is shown of these users now, in their order."""
        live = await self.liveness(tenant_id, user_ids)
        chosen = await self._chosen(tenant_id, user_ids)
        now = self.clock()
        return [shown(u, live[u], chosen.get(u), now) for u in user_ids]

    async def active(self, tenant_id: str) -> list[tuple[str, Liveness]]:
        """Every user of the tenant the bucket holds activity of (the tenant's recent users, not the cluster's),
        with what this instance saw and has not written yet (a first sighting is flushed a moment later)."""
        values: dict[str, Liveness] = {}
        if self._kv is not None:
            sockets: dict[str, _Sockets] = {}
            await self._read_active(tenant_id, values, sockets)
            for user_id, value in sockets.items():
                await self._resolve(values[user_id], value)
        now = self.clock()
        for (tenant, user_id), local in self._local.items():
            if tenant == tenant_id:
                mine = self._local_liveness(local, now)
                live = values.setdefault(user_id, Liveness())
                live.last_active = _latest(live.last_active, mine.last_active)
                if mine.socket_until is not None:
                    live.socket_until = _latest(live.socket_until, mine.socket_until)
        return list(values.items())

    async def _read_active(self, tenant_id: str, values: dict[str, Liveness], sockets: dict[str, _Sockets]) -> None:
        assert self._kv is not None
        try:
            watcher = await self._kv.watch(f"*.{tenant_id}.*", include_history=False, ignore_deletes=True)
        except (NatsError, TimeoutError) as exc:  # NATS away: only what this instance saw is known
            log.warning("presence bucket unreadable", error=repr(exc))
            return
        try:
            while (entry := await watcher.updates(timeout=5.0)) is not None:  # None: the current values are in
                kind, _, encoded = entry.key.split(".", 2)
                user_id = _user_of(encoded)
                live = values.setdefault(user_id, Liveness())
                if kind == "s":
                    if (value := _decode_sockets(entry.value)) is not None:
                        sockets[user_id] = value
                else:
                    _merge_active(live, entry.value)
        except (NatsError, TimeoutError) as exc:
            log.warning("presence bucket read cut short", error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def connected_users(self, tenant_id: str, user_ids: Iterable[str]) -> set[str]:
        """Those of `user_ids` with an open WebSocket on any instance."""
        ids = list(dict.fromkeys(user_ids))
        live = await self.liveness(tenant_id, ids)
        now = self.clock()
        return {u for u, lv in live.items() if lv.socket_until is not None and lv.socket_until > now}

    async def offline_for(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, float | None]:
        """Seconds since each user's last WebSocket closed (0 while one is open; None if none was seen)."""
        ids = list(dict.fromkeys(user_ids))
        live = await self.liveness(tenant_id, ids)
        now = self.clock()
        gone: dict[str, float | None] = {}
        for user_id, lv in live.items():
            if lv.socket_until is not None and lv.socket_until > now:
                gone[user_id] = 0.0
            else:
                ended = lv.socket_closed if lv.socket_closed is not None else lv.socket_until
                gone[user_id] = None if ended is None else max(now - ended, 0.0)
        return gone

    async def tell(self, tenant_id: str, user_id: str) -> UserPresence:
        """Publish the user's presence as it is now (after they chose a status); what was told."""
        [presence] = await self.presences(tenant_id, [user_id])
        await self._publish(tenant_id, user_id, presence)
        local = self._local.get((tenant_id, user_id))
        if local is not None:
            local.told = presence
        return presence

    # --- running -------------------------------------------------------------------------------------
    async def start(self, nc: NatsClient, *, flushing: bool = True) -> None:
        """Open (or create) the bucket and start flushing (without `flushing`, only explicit `flush()` calls write
        and tell: a test driving a fake clock must not race a flush of its own)."""
        self._nc = nc
        js = nc.jetstream()
        try:
            self._kv = await js.key_value(presence_bucket())
        except BucketNotFoundError:
            self._kv = await js.create_key_value(bucket=presence_bucket(), history=1, ttl=self._memory_seconds)
        if flushing:
            self._task = asyncio.create_task(self._run(), name="presence-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        # This instance's sockets end now for everyone, not when its lease would have run out. Best effort and
        # bounded: with NATS away the lease simply runs out, and a shutdown must not wait for a publish timeout.
        if (self._kv is not None and self._lease_written is not None
                and self._nc is not None and self._nc.is_connected):
            with contextlib.suppress(NatsError, TimeoutError):
                async with asyncio.timeout(_STOP_WRITE_SECONDS):
                    await self._kv.put(f"i.{self.instance_id}", _encoder.encode(self.clock()))

    async def _run(self) -> None:
        next_flush = self.clock() + self._flush_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            try:
                if self.clock() >= next_flush or not self._urgent:
                    next_flush = self.clock() + self._flush_seconds
                    await self.flush()
                else:
                    await self._check(self._take_urgent())
            except Exception:  # a lost flush is retried by the next one; presence never stops the service
                log.exception("presence flush failed")

    async def flush(self) -> None:
        """Write every served user's activity and socket leases, tell the changes due, forget who is long gone."""
        now = self.clock()
        await self._renew_lease()
        writes = []
        for key, local in list(self._local.items()):
            if (local.sockets > 0 and not self._registered(local, now)) or (
                    local.sockets == 0 and local.registered is not None):  # an open or a close not written yet
                writes.append(self._register(key, local))
            if local.last_active is not None and local.last_active != local.written_active:
                writes.append(self._write_active(key, local))
            if len(writes) >= BATCH:
                await asyncio.gather(*writes)
                writes = []
        await asyncio.gather(*writes)
        due = self._take_urgent() | {k for k, at in self._lapses.items() if at <= now}
        for key, local in self._local.items():
            if automatic_status(self._local_liveness(local, now), now) != local.auto:
                due.add(key)
        await self._check(due)
        for key in [k for k, loc in self._local.items() if loc.sockets == 0 and loc.auto == "offline"
                    and key_settled(loc)]:
            del self._local[key]

    def _take_urgent(self) -> set[UserKey]:
        urgent, self._urgent = self._urgent, set()
        return urgent

    async def _check(self, keys: set[UserKey]) -> None:
        """Tell the users' presence where it changed from what this instance last told."""
        now = self.clock()
        for key in keys:
            if self._lapses.get(key, now + 1) <= now:
                del self._lapses[key]
        by_tenant: dict[str, list[str]] = {}
        for tenant_id, user_id in keys:
            by_tenant.setdefault(tenant_id, []).append(user_id)
        for tenant_id, all_ids in by_tenant.items():
            for start in range(0, len(all_ids), BATCH):
                await self._check_some(tenant_id, all_ids[start:start + BATCH], now)

    async def _check_some(self, tenant_id: str, user_ids: list[str], now: float) -> None:
        """Write what is unwritten of these users' activity first, so others read what is told."""
        unwritten = [(key, local) for key in ((tenant_id, u) for u in user_ids)
                     if (local := self._local.get(key)) is not None and local.last_active != local.written_active]
        await asyncio.gather(*(self._write_active(key, local) for key, local in unwritten))
        for presence in await self.presences(tenant_id, user_ids):
            local = self._local.get((tenant_id, presence.user_id))
            if local is not None:
                local.auto = automatic_status(self._local_liveness(local, now), now)
                if local.told is not None and _same(local.told, presence):
                    continue
                local.told = presence
            await self._publish(tenant_id, presence.user_id, presence)

    async def _publish(self, tenant_id: str, user_id: str, presence: UserPresence) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(user_presence_subject(tenant_id, user_id), _encoder.encode(presence))
            self.published += 1

    # --- the bucket ------------------------------------------------------------------------------------
    def _local_liveness(self, local: _Local, now: float) -> Liveness:
        until = now + self._flush_seconds * LEASE_FLUSHES if local.sockets > 0 else None
        return Liveness(last_active=local.last_active, socket_until=until, socket_closed=local.socket_closed)

    async def _write_active(self, key: UserKey, local: _Local) -> None:
        """Write the user's last activity seen here unless the bucket holds a later one."""
        # Not a plain put: the last writer would win, so an instance that saw the user earlier but flushed later
        # would replace the later activity another instance wrote, and every reader would see the user idle or
        # offline too early (until the user's next call was written).
        value = local.last_active
        if self._kv is None or value is None:
            return
        name, encoded = _key("a", key), _encoder.encode(value)
        revision = local.active_revision  # a user served here alone: one update, no read
        while True:
            try:
                local.active_revision = await self._write_at(name, encoded, revision)
                break
            except KeyWrongLastSequenceError:
                pass  # written elsewhere since: keep whichever activity is later
            try:
                entry = await self._kv.get(name)
            except KeyNotFoundError:
                revision = None
                continue
            revision = entry.revision
            stored = _decode_float(entry.value)
            if stored is not None and stored >= value:
                local.active_revision = revision
                break
        local.written_active = value

    async def _renew_lease(self) -> None:
        """One write for all of this instance's sockets, however many: they are open until the lease runs out."""
        if self._kv is None or not any(loc.sockets > 0 for loc in self._local.values()):
            return
        until = self.clock() + self._flush_seconds * LEASE_FLUSHES
        await self._kv.put(f"i.{self.instance_id}", _encoder.encode(until))
        self._lease_written = until

    def _registered(self, local: _Local, now: float) -> bool:
        # Re-registered well before the bucket forgets the value (it is rewritten only on changes).
        return local.registered is not None and now - local.registered < self._memory_seconds / 2

    async def _register(self, key: UserKey, local: _Local) -> None:
        """Put this instance into (a socket open here) or out of (none left) the user's `s.` value."""
        if self._kv is None:
            return
        if local.sockets > 0 and (self._lease_written or 0.0) < self.clock() + self._flush_seconds:
            await self._renew_lease()  # the first socket here, or the first after a while without any
        name = _key("s", key)
        if local.sockets > 0 and local.registered is None:
            # Most often the user's first socket anywhere in a while: one create instead of a read and a create.
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._kv.create(name, _encoder.encode(_Sockets(on=[self.instance_id])))
                local.registered = self.clock()
                return
        while True:
            try:
                entry = await self._kv.get(name)
                current, revision = _decode_sockets(entry.value) or _Sockets(), entry.revision
            except KeyNotFoundError:
                current, revision = _Sockets(), None
            on = [i for i in current.on if i != self.instance_id]
            closed = current.closed
            if local.sockets > 0:
                on.append(self.instance_id)
            elif not on:
                closed = _latest(closed, local.socket_closed)
            value = _encoder.encode(_Sockets(on=sorted(on), closed=closed))
            try:
                await self._write_at(name, value, revision)
            except KeyWrongLastSequenceError:
                continue  # another instance changed it meanwhile: apply this change to theirs
            local.registered = self.clock() if local.sockets > 0 else None
            return

    async def _write_at(self, name: str, value: bytes, revision: int | None) -> int:
        """Compare-and-set: create the key (revision None) or replace the value it holds at `revision`; the new
        revision. KeyWrongLastSequenceError when another writer got there first."""
        assert self._kv is not None
        if revision is None:
            return await self._kv.create(name, value)
        return await self._kv.update(name, value, last=revision)

    async def _register_now(self, key: UserKey, local: _Local) -> None:
        # From the gateway: NATS being away must not fail the socket; the next flush writes it again.
        try:
            await self._register(key, local)
        except (NatsError, TimeoutError) as exc:
            if local.sockets > 0:
                local.registered = None
            log.warning("presence socket not written", error=repr(exc))

    async def _read(self, tenant_id: str, user_id: str) -> Liveness:
        local = self._local.get((tenant_id, user_id))
        now = self.clock()
        if (local is not None and local.sockets > 0 and local.last_active is not None
                and now - local.last_active < AWAY_AFTER_SECONDS):
            # Open and active here: online and seen now whatever other instances wrote, so nothing to read (this
            # is every user of a burst of connects, whose reads timed out at 50,000 users).
            return self._local_liveness(local, now)
        live = Liveness()
        if self._kv is not None:
            for kind in ("a", "s"):
                try:
                    entry = await self._kv.get(_key(kind, (tenant_id, user_id)))
                except KeyNotFoundError:
                    continue
                except (NatsError, TimeoutError) as exc:  # NATS away: what this instance saw is all there is
                    log.warning("presence bucket unreadable", error=repr(exc))
                    break
                if kind == "a":
                    _merge_active(live, entry.value)
                else:
                    await self._resolve(live, _decode_sockets(entry.value))
        if local is not None:  # what this instance saw and has not written yet
            mine = self._local_liveness(local, self.clock())
            live.last_active = _latest(live.last_active, mine.last_active)
            if mine.socket_until is not None:
                live.socket_until = _latest(live.socket_until, mine.socket_until)
        return live

    async def _chosen(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Explicit]:
        rows = await chosen_statuses(self._pool, tenant_id, user_ids)
        return {u: Explicit(status=r["status"], status_text=r["status_text"],  # type: ignore[arg-type]
                            status_emoji=r["status_emoji"],  # type: ignore[arg-type]
                            expires_at=_seconds(r["expires_at"]), set_at=_seconds(r["set_at"]) or 0.0)
                for u, r in rows.items()}


def key_settled(local: _Local) -> bool:
    """Whether a served user's last change was told and written, so forgetting them loses nothing."""
    return local.told is not None and local.last_active == local.written_active and local.registered is None


def _same(a: UserPresence, b: UserPresence) -> bool:
    """Whether others would notice no change between the two (the time last seen alone is no news)."""
    return (a.status, a.status_text, a.status_emoji) == (b.status, b.status_text, b.status_emoji)


def _merge_active(live: Liveness, value: bytes | None) -> None:
    live.last_active = _latest(live.last_active, _decode_float(value))


def _decode_float(value: bytes | None) -> float | None:
    if not value:
        return None
    try:
        return _float.decode(value)
    except msgspec.DecodeError:
        log.warning("undecodable presence value", kind="a")
        return None


def _decode_sockets(value: bytes | None) -> _Sockets | None:
    if not value:
        return None
    try:
        return _sockets.decode(value)
    except msgspec.DecodeError:  # e.g. a `[until, closed]` lease of an older version: it lapses by itself
        return None


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _seconds(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _key(kind: str, key: UserKey) -> str:
    tenant_id, user_id = key
    return f"{kind}.{tenant_id}.{_user_token(user_id)}"


def _user_token(user_id: str) -> str:
    # KV keys allow [-/_=.A-Za-z0-9]: 'u' + the id when it is that safe (without '.'), else 'h' + its hex.
    safe = user_id.replace("-", "").replace("_", "").isalnum() and user_id.isascii()
    return "u" + user_id if safe else "h" + user_id.encode().hex()


def _user_of(token: str) -> str:
    return token[1:] if token.startswith("u") else bytes.fromhex(token[1:]).decode()
