"""The WebSocket gateway `/ws?token=…`: resume by last_seq, live events in seq order, send, ack, typing.

Each connection has one queue and one task that works through it in order — sync requests, live
events, signals — so a room's events leave in seq order without locks: an event at or below what the
client already has is dropped, and a jump ahead is filled from the log in PostgreSQL first.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from projections.guards import MemberOf, current_membership_error
from schemas import api
from schemas.errors import AuthenticationError, PayloadTooLarge, RoomlogError, ValidationError
from schemas.events import MemberRemoved, RecordedEvent
from schemas.realtime import (
    AckFrame,
    ClientFrame,
    ErrorFrame,
    Ping,
    Pong,
    ReadFrame,
    Resync,
    Send,
    Sent,
    Shutdown,
    Sync,
    Synced,
    TypingSignal,
    TypingStart,
    TypingStop,
)
from schemas.roles import is_tenant_role
from service.commands.messages import record_ack, record_read, send_message
from service.commands.support.router import route_tenant
from service.identity.auth import Principal
from service.realtime._mailbox import Mailbox
from service.realtime.catch_up import FramePage, read_frames
from service.realtime.frames import BATCH_BYTES, encode_event_batch
from service.realtime.hub import Hub
from service.web.bodies import BodyDecoder
from service.web.errors import error_response
from service.web.ws_protocol import ABORT_EXTENSION

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("roomlog.gateway")

_frames: BodyDecoder[ClientFrame] = BodyDecoder(ClientFrame, what="frame")
_encoder = msgspec.json.Encoder()
# Close codes (application range 4000-4999): reconnect and sync again; the server is going away; the
# session behind the token was revoked (log in again).
CLOSE_RESYNC = 4008
CLOSE_SHUTDOWN = 4009
CLOSE_SESSION_ENDED = 4001
# What each close code tells the client; the AsyncAPI document states them.
CLOSE_CODES = {
    1000: "normal closure: either side ended the connection",
    CLOSE_SESSION_ENDED: "the session behind the token was revoked (after an AUTHENTICATION_ERROR error frame)",
    CLOSE_RESYNC: "the client fell behind (after a resync frame): reconnect and sync from the seqs it names",
    CLOSE_SHUTDOWN: "the instance is shutting down (after server.shutdown): reconnect after reconnect_after_ms",
}


class _Stalled(Exception):
    """One write to the client did not finish within the send timeout: its socket stopped draining."""


class _Overflowed(Exception):
    """The connection's queue overflowed while the pump was working on an item."""


class Connection:
    """One client socket: its subscriptions, the last seq it has of each room, and its work queue."""

    def __init__(self, ws: WebSocket, principal: Principal, runtime: Runtime, hub: Hub) -> None:
        self.ws = ws
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.user_id = principal.user_id
        self.runtime = runtime
        self.hub = hub
        # The last seq of each room that was written to the socket: what a resync frame reports.
        self.rooms: dict[str, int] = {}
        self.queue: Mailbox[tuple[str, Any]] = Mailbox(runtime.settings.ws_queue_size)
        self.send_timeout = runtime.settings.ws_send_timeout_seconds
        self.overflowed = False
        # What the last sync asked for: catch-ups as events.batch frames instead of one frame per event.
        self.batches = False

    # --- called by the hub; never blocks ------------------------------------------------------
    def offer_event(self, event: RecordedEvent, text: str) -> None:
        self._offer(("event", (event, text)))

    def offer_frame(self, frame: msgspec.Struct, *, room_id: str | None = None) -> None:
        self._offer(("frame", frame))

    def offer_resume(self) -> None:
        self._offer(("resume", None))

    def _offer(self, item: tuple[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too far behind: what is queued is dropped at once (memory stays bounded) and the next thing
            # the pump does is tell the client to resync from what it was actually sent.
            self.overflowed = True
            self.interrupt("overflow")

    def interrupt(self, kind: str) -> None:
        """Drop everything queued and make `kind` the pump's next item."""
        self.queue.clear()
        self.queue.put_nowait((kind, None))

    # --- the connection's own task ------------------------------------------------------------
    async def pump(self) -> None:
        """Work through the queue until the socket closes."""
        try:
            while True:
                kind, item = await self.queue.get()
                if kind == "overflow":
                    break
                if kind == "session_ended":
                    await self.end(ErrorFrame(code=AuthenticationError.code, message="session ended; log in again"),
                                    CLOSE_SESSION_ENDED)
                    return
                if kind == "close":
                    return
                await self._work(kind, item)
        except _Overflowed:
            pass
        except _Stalled:
            log.info("websocket client stopped reading; dropping it", user_id=self.user_id)
            self.runtime.metrics.ws_slow_drops.inc()
            self.abort()
            return
        self.runtime.metrics.ws_resyncs.inc()
        await self.end(Resync(rooms=dict(self.rooms)), CLOSE_RESYNC)

    async def _work(self, kind: str, item: Any) -> None:
        if kind == "event":
            await self._deliver(*item)
        elif kind == "frame":
            await self.send(item)
        elif kind == "sync":
            await self._sync(item)
        elif kind == "resume":
            for room_id in list(self.rooms):
                await self._catch_up(room_id)

    async def end(self, frame: msgspec.Struct, code: int) -> None:
        """Send a last frame and close with `code`; a client that cannot take them in time is dropped."""
        # A client that does not take even this frame in time is dropped without it.
        try:
            await self.send(frame)
            await asyncio.wait_for(self.ws.close(code=code), self.send_timeout)
        except (_Stalled, TimeoutError):
            self.abort()

    async def shut_down(self, reconnect_after_ms: int) -> None:
        """Say `server.shutdown` and close with 4009 (the hub's subscriber protocol)."""
        with contextlib.suppress(Exception):
            await self.end(Shutdown(reconnect_after_ms=reconnect_after_ms), CLOSE_SHUTDOWN)

    def abort(self) -> None:
        """Reset the TCP connection now, whatever is still buffered for it (when the server offers it)."""
        abort = self.ws.scope.get("extensions", {}).get(ABORT_EXTENSION, {}).get("abort")
        if abort is not None:
            abort()

    async def send(self, frame: msgspec.Struct) -> None:
        """Write one frame; only the pump task calls this, so writes never interleave."""
        await self._write(_encoder.encode(frame).decode())

    async def _write(self, text: str) -> None:
        # uvicorn waits for room in the send buffer before it writes a frame, so a timed-out write
        # wrote nothing: the client has exactly what self.rooms says.
        try:
            await asyncio.wait_for(self.ws.send_text(text), self.send_timeout)
        except TimeoutError:
            raise _Stalled from None

    async def reply(self, frame: msgspec.Struct) -> None:
        """Queue a frame behind everything already queued for this client."""
        await self.queue.put(("frame", frame))

    async def _sync(self, frame: Sync) -> None:
        self.batches = frame.batch
        for room_id, last_seq in frame.rooms.items():
            error = await current_membership_error(self.runtime.pool, MemberOf(self.tenant_id, room_id, self.user_id))
            if error is not None:
                await self.send(ErrorFrame(code=error.code, message=error.message, room_id=room_id))
                continue
            # Subscribe before reading the log: live events queue up behind this sync and are
            # then dropped or delivered by seq, so nothing falls between the read and the live feed.
            await self.hub.subscribe(self, room_id)
            self.rooms[room_id] = last_seq
            await self._catch_up(room_id)
        await self.send(Synced(rooms={r: self.rooms[r] for r in frame.rooms if r in self.rooms}))

    async def _catch_up(self, room_id: str, until: int | None = None) -> None:
        while room_id in self.rooms:
            after = self.rooms[room_id]
            if until is not None and after >= until:
                return
            # What was deleted since is caught up without its content, as the raw room log shows it.
            page = self.runtime.settings.ws_catch_up_page
            frames = await read_frames(self.runtime.pool, room_id, after_seq=after, limit=page,
                                       user_id=self.user_id, now=self.runtime.wall_clock())
            if self.batches:
                await self._send_batches(room_id, frames)
            else:
                for i, seq in enumerate(frames.seqs):
                    if room_id not in self.rooms:
                        return
                    await self._send_text(room_id, seq, frames.frame(i), removed=frames.removed[i])
            if len(frames) < page:
                return

    async def _send_batches(self, room_id: str, frames: FramePage) -> None:
        """A page of the room's log as events.batch frames of up to BATCH_BYTES, the event texts joined as they are."""
        first = size = 0
        last = len(frames) - 1
        for i, removed in enumerate(frames.removed):
            size += frames.size(i)
            if size < BATCH_BYTES and not removed and i < last:
                continue
            if self.overflowed:  # as in _send_text: the client resyncs from what it was sent
                raise _Overflowed
            if room_id not in self.rooms:
                return
            await self._write(encode_event_batch(room_id, frames.joined(first, i + 1)))
            self.rooms[room_id] = frames.seqs[i]
            first, size = i + 1, 0
            if removed:  # the last event of the room this user may see
                self._removed(room_id)
                return

    async def _deliver(self, event: RecordedEvent, text: str) -> None:
        room_id = event.stream_id
        have = self.rooms.get(room_id)
        if have is None or event.seq <= have:
            return
        if event.seq > have + 1:
            await self._catch_up(room_id, until=event.seq - 1)
            if self.rooms.get(room_id, event.seq) >= event.seq:
                return
        removed = isinstance(event.event, MemberRemoved) and event.event.user_id == self.user_id
        await self._send_text(room_id, event.seq, text, removed=removed)

    async def _send_text(self, room_id: str, seq: int, text: str, *, removed: bool) -> None:
        if self.overflowed:  # a catch-up in progress stops here: the client resyncs instead
            raise _Overflowed
        await self._write(text)
        self.rooms[room_id] = seq
        if removed:  # this was the last event of the room this user may see
            self._removed(room_id)

    def _removed(self, room_id: str) -> None:
        del self.rooms[room_id]
        self.hub.unsubscribe(self, room_id)

    # --- frames from the client ---------------------------------------------------------------
    async def handle(self, raw: str | bytes) -> None:
        """Act on one client frame; errors go back as error frames, never close the socket."""
        if len(raw) > self.runtime.settings.max_body_bytes:
            # Frames are bounded like request bodies, which also bounds the cost of measuring one.
            await self.reply(ErrorFrame(code=PayloadTooLarge.code,
                                        message=f"frame over {self.runtime.settings.max_body_bytes} bytes"))
            return
        self.runtime.realtime.presence.seen(self.tenant_id, self.user_id)
        try:
            frame = _frames.decode(raw)
        except ValidationError as exc:
            await self.reply(ErrorFrame(code=exc.code, message=exc.message, field=exc.field))
            return
        try:
            await self._act(frame)
        except RoomlogError as exc:
            await self.reply(ErrorFrame(
                code=exc.code, message=exc.message, field=exc.field,
                room_id=getattr(frame, "room_id", None), client_msg_id=getattr(frame, "client_msg_id", None),
            ))

    async def _act(self, frame: ClientFrame) -> None:
        if isinstance(frame, Sync):
            await self.queue.put(("sync", frame))
        elif isinstance(frame, Send):
            cmd = api.SendMessage(content=frame.content, meta=frame.meta, client_msg_id=frame.client_msg_id,
                                  thread_id=frame.thread_id, type=frame.message_type,
                                  attachments=frame.attachments, mentions=frame.mentions)
            sent = await send_message(self.runtime, self.principal, frame.room_id, cmd, state={})
            await self.reply(Sent(
                client_msg_id=frame.client_msg_id, message_id=sent.result.message_id, room_id=frame.room_id,
                seq=sent.result.seq, created_at=sent.result.created_at, duplicate=sent.duplicate,
            ))
        elif isinstance(frame, AckFrame):
            await record_ack(self.runtime, self.principal, frame.room_id, frame.seq)
        elif isinstance(frame, ReadFrame):
            await record_read(self.runtime, self.principal, frame.room_id, frame.seq)
        elif isinstance(frame, TypingStart | TypingStop):
            if frame.room_id not in self.rooms:
                raise ValidationError("sync the room before sending typing signals", field="room_id")
            await self.hub.publish_typing(self.tenant_id, TypingSignal(
                room_id=frame.room_id, user_id=self.user_id, typing=isinstance(frame, TypingStart)))
        elif isinstance(frame, Ping):
            await self.reply(Pong())


async def websocket_endpoint(ws: WebSocket) -> None:
    """Authenticate by `?token=`, then serve the connection until either side closes."""
    runtime: Runtime = ws.app.state.runtime
    hub = runtime.realtime.hub
    try:
        claims = runtime.auth.signer.verify(ws.query_params.get("token", ""), token_type="ws")
    except AuthenticationError as exc:
        await ws.send_denial_response(error_response(401, exc.code, exc.message))
        return
    role = claims.role if is_tenant_role(claims.role) else "customer"
    principal = Principal(tenant_id=claims.tenant_id, user_id=claims.user_id, role=role, via="jwt",
                          session_id=claims.session_id)
    await ws.accept()
    conn = Connection(ws, principal, runtime, hub)
    await hub.connect(conn)
    await runtime.realtime.presence.connected(conn.tenant_id, conn.user_id)
    if runtime.settings.support_require_connection and role in ("agent", "admin"):
        await route_tenant(runtime, conn.tenant_id)  # a connected agent is capacity that just appeared
    pump = asyncio.create_task(conn.pump())
    watch = asyncio.create_task(watch_session(conn, every=runtime.settings.ws_recheck_seconds))
    runtime.metrics.ws_connections.inc()
    try:
        while True:
            receiver = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({receiver, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                receiver.cancel()
                break
            message = receiver.result()
            if message["type"] == "websocket.disconnect":
                break
            await conn.handle(message.get("text") or message.get("bytes") or b"")
    except WebSocketDisconnect:
        pass
    finally:
        runtime.metrics.ws_connections.dec()
        for task in (pump, watch):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        rooms = list(conn.rooms)
        await runtime.realtime.presence.disconnected(conn.tenant_id, conn.user_id)
        hub.disconnect(conn, rooms)
        if ws.application_state == WebSocketState.CONNECTED:
            try:
                await asyncio.wait_for(ws.close(), conn.send_timeout)
            except TimeoutError:
                conn.abort()
            except Exception:  # the client may be gone already: nothing is left to tell it
                pass


async def watch_session(conn: Connection, *, every: float) -> None:
    """Close the socket (4001) once the session its token came from is revoked; checked every `every` s.

    The token only authorises the upgrade: a socket outlives it, but not the session behind it. A
    token issued for an API key carries no session, so such sockets are not re-checked.
    """
    session_id = conn.principal.session_id
    if session_id is None:
        return
    auth = conn.runtime.auth
    while True:
        await asyncio.sleep(every)
        try:
            active = await auth.session_active(conn.tenant_id, session_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("session re-check failed; trying again later", error=repr(exc))
            continue
        if not active:
            conn.interrupt("session_ended")
            return


