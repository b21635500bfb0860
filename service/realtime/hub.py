"""The instance's fan-out hub: takes committed events from NATS and hands them to local connections.

An instance subscribes only to what its clients need: a room's subject while some local client is
in the room, and a tenant's user, notification and signal subjects while some client of the tenant
is connected. So NATS routes each event only to the instances that have an interested client, and
an instance with no clients receives nothing. These are plain NATS subscriptions on the subjects the
relay publishes to JetStream: a connection catches up on the past from PostgreSQL, fills any gap it
sees from there too, and re-reads its rooms after a NATS reconnect, so nothing the subscription
misses is lost. Offering never waits on a client: a connection whose queue is full is told to
resync, so one slow client never holds up the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Protocol

import asyncpg
import msgspec
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from projections.members import list_members
from projections.subscriptions import notification_targets
from schemas.events import AckRecorded, MemberJoined, MemberRemoved, NotificationSent, ReadRecorded, RecordedEvent
from schemas.notifications import NotificationFrame
from schemas.presence import PresenceUpdated, UserPresence
from schemas.realtime import AckReceived, ReadReceipt, Typing, TypingSignal
from service.realtime.frames import encode_event_frame
from service.realtime.jetstream import room_subject, tenant_subjects, typing_subject, user_presence_subject
from service.realtime.support_frames import support_frames

log = structlog.get_logger("roomlog.hub")

_recorded = msgspec.json.Decoder(RecordedEvent)
_typing = msgspec.json.Decoder(TypingSignal)
_presence = msgspec.json.Decoder(UserPresence)
_encoder = msgspec.json.Encoder()


class Subscriber(Protocol):
    """A live connection as the hub sees it."""

    tenant_id: str
    user_id: str

    def offer_event(self, event: RecordedEvent, text: str) -> None: ...

    def offer_frame(self, frame: msgspec.Struct, *, room_id: str | None = None) -> None: ...

    def offer_resume(self) -> None: ...

    async def shut_down(self, reconnect_after_ms: int) -> None:
        """Tell the client this instance is going away, then close; never raises, bounded in time."""
        ...


class Hub:
    """Who is connected to this instance and subscribed to which room."""

    def __init__(self, db: asyncpg.Pool, *, support_handle_seconds: float = 300.0, typing_seconds: float = 5.0) -> None:
        self._db = db
        self._typing_ms = int(typing_seconds * 1000)
        self._support_handle_seconds = support_handle_seconds
        self._rooms: dict[str, set[Subscriber]] = defaultdict(set)
        self._users: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self._tenants: dict[str, int] = defaultdict(int)
        # NATS subscriptions by what they serve: a room id, or ("tenant", tenant_id)
        self._subs: dict[object, list[Subscription]] = {}
        self._sub_lock = asyncio.Lock()
        self._nc: NatsClient | None = None
        # Presence interest: the members of each room a local client is in, and the rooms each of them is
        # watched through; one subscription to `rlp.<tenant>.<user>` per watched user.
        self._room_members: dict[str, tuple[str, set[str]]] = {}
        self._watching: dict[tuple[str, str], set[str]] = {}
        self._presence_subs: dict[tuple[str, str], Subscription] = {}
        self._told: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}
        self.delivered = 0

    # --- connections -------------------------------------------------------------------------
    async def connect(self, conn: Subscriber) -> bool:
        """Register a connection; True when it is the user's first on this instance."""
        peers = self._users[(conn.tenant_id, conn.user_id)]
        peers.add(conn)
        self._tenants[conn.tenant_id] += 1
        if self._tenants[conn.tenant_id] == 1:
            await self._listen(("tenant", conn.tenant_id), tenant_subjects(conn.tenant_id))
        return len(peers) == 1

    def disconnect(self, conn: Subscriber, rooms: list[str]) -> bool:
        """Forget a connection; True when it was the user's last on this instance."""
        for room_id in rooms:
            self.unsubscribe(conn, room_id)
        self._tenants[conn.tenant_id] -= 1
        if self._tenants[conn.tenant_id] <= 0:
            del self._tenants[conn.tenant_id]
            self._stop_listening(("tenant", conn.tenant_id))
        key = (conn.tenant_id, conn.user_id)
        peers = self._users.get(key, set())
        peers.discard(conn)
        if not peers:
            self._users.pop(key, None)
            return True
        return False

    async def subscribe(self, conn: Subscriber, room_id: str, *, presence: bool = True) -> None:
        """Deliver the room's events to `conn`; returns once NATS routes them here (read the log after).

        Without `presence` (a long-poll, which shows no presence frames) the room's members are not followed for it.
        """
        self._rooms[room_id].add(conn)
        # Every subscriber waits (on the lock) until the room's subscription is confirmed, not only the first.
        await self._listen(room_id, [room_subject(conn.tenant_id, room_id)])
        if presence and room_id not in self._room_members:
            await self._watch_members(conn.tenant_id, room_id)

    async def _watch_members(self, tenant_id: str, room_id: str) -> None:
        """Follow the presence of the room's members; returns once NATS routes their changes here."""
        self._room_members[room_id] = (tenant_id, set())
        new = []
        for r in await list_members(self._db, tenant_id, room_id):
            if (tenant_id, r["user_id"]) not in self._watching:
                new.append(r["user_id"])
            self._watch(tenant_id, r["user_id"], room_id, subscribe=False)
        if self._nc is None:
            return
        for user_id in new:
            await self._subscribe_presence((tenant_id, user_id))
        if self._nc.is_connected:
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)

    def unsubscribe(self, conn: Subscriber, room_id: str) -> None:
        subscribers = self._rooms.get(room_id)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self._rooms[room_id]
                self._stop_listening(room_id)
                tenant_id, members = self._room_members.pop(room_id, ("", set()))
                for user_id in list(members):
                    self._unwatch(tenant_id, user_id, room_id)

    async def _listen(self, key: object, subjects: list[str]) -> None:
        async with self._sub_lock:
            if key in self._subs or self._nc is None:
                return
            self._subs[key] = [await self._nc.subscribe(subject, cb=self._on_message) for subject in subjects]
            # The server has the interest once it answered a PING sent after the SUBs. While NATS is away
            # there is nobody to answer (the client re-subscribes on reconnect): do not wait for it.
            if self._nc.is_connected:
                with contextlib.suppress(Exception):
                    await self._nc.flush(timeout=2)

    def _stop_listening(self, key: object) -> None:
        for sub in self._subs.pop(key, []):
            asyncio.get_running_loop().create_task(_quietly_unsubscribe(sub))

    async def on_reconnected(self) -> None:
        """NATS was away: whatever it routed meanwhile is lost, so every connection re-reads its rooms."""
        for conn in self.connections():
            conn.offer_resume()

    def connections(self) -> list[Subscriber]:
        return [c for peers in self._users.values() for c in peers]

    def is_online(self, tenant_id: str, user_id: str) -> bool:
        return (tenant_id, user_id) in self._users

    def watched(self) -> int:
        """How many users' presence this instance follows."""
        return len(self._watching)

    # --- presence interest -------------------------------------------------------------------------
    def _watch(self, tenant_id: str, user_id: str, room_id: str, *, subscribe: bool = True) -> None:
        held = self._room_members.get(room_id)
        if held is None:
            return
        held[1].add(user_id)
        key = (tenant_id, user_id)
        rooms = self._watching.setdefault(key, set())
        rooms.add(room_id)
        if subscribe and len(rooms) == 1 and self._nc is not None:
            asyncio.get_running_loop().create_task(self._subscribe_presence(key))

    def _unwatch(self, tenant_id: str, user_id: str, room_id: str) -> None:
        held = self._room_members.get(room_id)
        if held is not None:
            held[1].discard(user_id)
        key = (tenant_id, user_id)
        rooms = self._watching.get(key)
        if rooms is None:
            return
        rooms.discard(room_id)
        if not rooms:
            del self._watching[key]
            self._told.pop(key, None)
            sub = self._presence_subs.pop(key, None)
            if sub is not None:
                asyncio.get_running_loop().create_task(_quietly_unsubscribe(sub))

    async def _subscribe_presence(self, key: tuple[str, str]) -> None:
        if key in self._presence_subs or key not in self._watching or self._nc is None:
            return
        sub = await self._nc.subscribe(user_presence_subject(*key), cb=self._on_presence)
        if key in self._watching and key not in self._presence_subs:
            self._presence_subs[key] = sub
        else:  # unwatched (or subscribed twice) meanwhile
            await _quietly_unsubscribe(sub)

    # --- intake --------------------------------------------------------------------------------
    async def start(self, nc: NatsClient) -> None:
        """Use this NATS connection from now on; clients that came before NATS get their subscriptions now."""
        self._nc = nc
        for key in list(self._watching):
            await self._subscribe_presence(key)
        for tenant_id in list(self._tenants):
            await self._listen(("tenant", tenant_id), tenant_subjects(tenant_id))
        for room_id, subscribers in list(self._rooms.items()):
            if subscribers:
                tenant_id = next(iter(subscribers)).tenant_id
                await self._listen(room_id, [room_subject(tenant_id, room_id)])
        # Whatever was committed while they had no subscription comes from the log.
        for conn in self.connections():
            conn.offer_resume()

    async def stop(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                await _quietly_unsubscribe(sub)
        self._subs = {}
        for sub in self._presence_subs.values():
            await _quietly_unsubscribe(sub)
        self._presence_subs = {}

    async def _on_message(self, msg: Msg) -> None:
        kind = msg.subject.split(".", 3)[2] if msg.subject.startswith("rlx.") else None
        if kind == "typing":
            await self._on_typing(msg)
        else:
            await self._on_event(msg)

    async def publish_typing(self, tenant_id: str, signal: TypingSignal) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.publish(typing_subject(tenant_id, signal.room_id), _encoder.encode(signal))

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = _recorded.decode(msg.data)
        except msgspec.DecodeError:
            log.error("undecodable event on NATS", subject=msg.subject)
            return
        await self.take(event)

    async def take(self, event: RecordedEvent) -> None:
        """Hand one committed event (from NATS, or from the log while NATS is away) to whoever gets it."""
        if isinstance(event.event, NotificationSent):
            await self._notify(event)
        elif event.stream_id.startswith("tkt_"):
            return  # tickets reach clients through REST only, where internal notes are filtered out
        elif event.stream_id.startswith(("sess_", "support:")):
            await self._support(event)
        else:
            self.dispatch(event)

    def dispatch(self, event: RecordedEvent) -> None:
        """Offer a committed event to every local connection entitled to it."""
        if isinstance(event.event, AckRecorded | ReadRecorded):  # a user's position: told to the room
            position = event.event
            user_id = event.metadata.actor or ""
            kind = AckReceived if isinstance(position, AckRecorded) else ReadReceipt
            frame = kind(room_id=position.room_id, user_id=user_id, seq=position.seq)
            for conn in self._in_room(event.tenant_id, position.room_id):
                conn.offer_frame(frame, room_id=position.room_id)
            return
        if isinstance(event.event, MemberJoined):
            self._watch(event.tenant_id, event.event.user_id, event.stream_id)
        elif isinstance(event.event, MemberRemoved):
            self._unwatch(event.tenant_id, event.event.user_id, event.stream_id)
        receivers = self._in_room(event.tenant_id, event.stream_id)
        if not receivers:
            return
        text = encode_event_frame(event)  # once, for every receiver
        for conn in receivers:
            conn.offer_event(event, text)
            self.delivered += 1

    async def _notify(self, event: RecordedEvent) -> None:
        n = event.event
        assert isinstance(n, NotificationSent)
        # Resolving rooms and topics costs a query: skip it when nobody of the tenant is connected here.
        if not any(tenant == event.tenant_id for tenant, _ in self._users):
            return
        users = await notification_targets(
            self._db, event.tenant_id, user_ids=n.user_ids, room_id=n.room_id,
            topic=n.topic if n.topic_subscribers else None,
        )
        frame = NotificationFrame(notification_id=n.notification_id, topic=n.topic, payload=n.payload,
                                  created_at=event.created_at)
        for user_id in users:
            for conn in self._users.get((event.tenant_id, user_id), ()):
                conn.offer_frame(frame)

    async def _support(self, event: RecordedEvent) -> None:
        local = {user for tenant, user in self._users if tenant == event.tenant_id}
        if not local:  # the frames cost queries: skip them when nobody of the tenant is connected here
            return
        try:
            frames = await support_frames(self._db, event, local,
                                          default_handle_seconds=self._support_handle_seconds)
        except Exception:  # a frame is a courtesy; the log and the REST API stay the truth
            log.exception("support frames failed", position=event.position)
            return
        for user_id, frame in frames:
            for conn in self._users.get((event.tenant_id, user_id), ()):
                conn.offer_frame(frame)

    async def _on_typing(self, msg: Msg) -> None:
        tenant_id = msg.subject.split(".")[1]
        signal = _typing.decode(msg.data)
        frame = Typing(room_id=signal.room_id, user_id=signal.user_id, typing=signal.typing,
                       expires_in_ms=self._typing_ms if signal.typing else None)
        for conn in self._in_room(tenant_id, signal.room_id):
            if conn.user_id != signal.user_id:
                conn.offer_frame(frame, room_id=signal.room_id)

    async def _on_presence(self, msg: Msg) -> None:
        tenant_id = msg.subject.split(".")[1]
        try:
            presence = _presence.decode(msg.data)
        except msgspec.DecodeError:
            log.error("undecodable presence on NATS", subject=msg.subject)
            return
        key = (tenant_id, presence.user_id)
        # Several instances may tell the same change (each serves the user): clients hear it once.
        seen = (presence.status, presence.status_text, presence.status_emoji)
        if self._told.get(key) == seen or key not in self._watching:
            return
        self._told[key] = seen
        frame = PresenceUpdated(user_id=presence.user_id, status=presence.status, last_seen=presence.last_seen,
                                status_text=presence.status_text, status_emoji=presence.status_emoji)
        told: set[Subscriber] = set()
        for room_id in self._watching[key]:
            for conn in self._in_room(tenant_id, room_id):
                if conn not in told and conn.user_id != presence.user_id:
                    told.add(conn)
                    conn.offer_frame(frame)

    def _in_room(self, tenant_id: str, room_id: str) -> list[Subscriber]:
        return [c for c in self._rooms.get(room_id, ()) if c.tenant_id == tenant_id]



async def _quietly_unsubscribe(sub: Subscription) -> None:
    with contextlib.suppress(Exception):
        await sub.unsubscribe()


async def announce_shutdown(hub: Hub, *, reconnect_after_ms: int = 1000) -> None:
    """Tell every local client to reconnect elsewhere, then close their sockets."""
    # At once and each bounded: a client that stopped reading must not hold up the others or the stop.
    await asyncio.gather(*(conn.shut_down(reconnect_after_ms) for conn in hub.connections()))
