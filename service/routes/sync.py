"""REST sync of many rooms in one round trip, and the long-poll for clients without a WebSocket."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from projections.members import active_rooms
from projections.messages import readable_events
from schemas import api
from schemas.errors import Forbidden, NotAMember, PollsFull, RoomNotFound, TooManyPolls
from service.commands.rooms import require_member
from service.domain.sync import check_room_count, joined_and_left, parse_room_seqs
from service.identity.auth import Principal
from service.realtime.polls import Polls, Waiter
from service.runtime import Runtime
from service.web.endpoints import Endpoint, Query, TextQuery
from service.web.request import JSON, body_as, caller_may, runtime_of
from service.web.views import room_event_view

# Percent-encoded, 2,500 characters of any text stay within the 32 KiB request head (ROOMLOG_MAX_HEADER_BYTES).
POLL_ROOMS = TextQuery("rooms", "the rooms to wait on with the seq the client has of each: ID:SEQ,ID:SEQ",
                       max_length=2_500)
POLL_TIMEOUT = Query("timeout", "seconds to wait for an event before answering empty (capped by the server)",
                     minimum=0, maximum=600, default=25)
POLL_LIMIT = Query("limit", "most events per room", minimum=1, maximum=100, default=50)
_TypingIn = Callable[[str, str], list[str]]


async def sync(request: Request) -> Response:
    principal = await caller_may(request, "rooms.sync")
    cmd = await body_as(request, api.SyncRequest)
    runtime = runtime_of(request)
    check_room_count(len(cmd.rooms), max_rooms=runtime.settings.sync_max_rooms)
    pool = await runtime.reads.for_read()
    mine = await active_rooms(pool, principal.tenant_id, principal.user_id)
    joined, left = joined_and_left(cmd.rooms, mine)
    rooms = {room_id: await _room_sync(pool, room_id, seq, mine[room_id], cmd.limit)
             for room_id, seq in cmd.rooms.items() if room_id in mine}
    return JSON(api.SyncResult(rooms=rooms, joined=joined, left=left))


async def _room_sync(pool: asyncpg.Pool, room_id: str, after_seq: int, last_seq: int, limit: int) -> api.RoomSync:
    if after_seq >= last_seq:  # nothing new: no read of the log
        return api.RoomSync(events=[], last_seq=after_seq, has_more=False)
    events, has_more = await readable_events(pool, room_id, after_seq=after_seq, limit=limit)
    return api.RoomSync(events=[room_event_view(e) for e in events],
                        last_seq=events[-1].seq if events else after_seq, has_more=has_more)


async def poll(request: Request) -> Response:
    principal = await caller_may(request, "rooms.sync")
    runtime = runtime_of(request)
    wanted = parse_room_seqs(POLL_ROOMS.read(request) or "", max_rooms=runtime.settings.sync_max_rooms)
    timeout = min(POLL_TIMEOUT.require(request), runtime.settings.poll_max_timeout_seconds)
    limit = POLL_LIMIT.require(request)
    pool = runtime.pool
    if len(await active_rooms(pool, principal.tenant_id, principal.user_id, among=list(wanted))) < len(wanted):
        for room_id in wanted:
            await require_member(request, principal, room_id)  # the first room refused raises its 404 or 403
    polls = runtime.realtime.polls
    deadline = runtime.monotonic() + timeout
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        async with polls.waiter(principal.tenant_id, principal.user_id, list(wanted)) as waiter:
            runtime.metrics.polls_waiting.inc()
            try:
                answer = await _wait_for_events(runtime, principal, wanted, limit, waiter, deadline, gone)
            finally:
                runtime.metrics.polls_waiting.dec()
            if gone.done():
                return Response(status_code=204)  # nobody is listening; the slot is free again
            if answer is None:
                answer = _empty_answer(principal, wanted, polls.typing.typing_in)
            return JSON(answer)
    finally:
        gone.cancel()


async def _wait_for_events(
    runtime: Runtime, principal: Principal, wanted: Mapping[str, int], limit: int, waiter: Waiter, deadline: float,
    gone: asyncio.Future[None],
) -> api.PollResult | None:
    """The answer once a polled room has news; None at the deadline, when the client went away, or on a stop."""
    polls = runtime.realtime.polls
    while True:
        # The primary, not a standby: a wake-up means the event is committed there.
        answer = await _poll_answer(runtime.pool, principal, wanted, limit, polls)
        if answer is not None or polls.closing:
            return answer
        if not await waiter.wait(deadline - runtime.monotonic(), unless=gone):
            return None


async def _poll_answer(
    pool: asyncpg.Pool, principal: Principal, wanted: Mapping[str, int], limit: int, polls: Polls
) -> api.PollResult | None:
    """What the poll answers now, or None while no polled room has anything after the client's seq."""
    mine = await active_rooms(pool, principal.tenant_id, principal.user_id, among=list(wanted))
    _, left = joined_and_left(wanted, mine)
    if not left and all(mine[room_id] <= seq for room_id, seq in wanted.items()):
        return None
    rooms = {}
    for room_id, seq in wanted.items():
        if room_id in mine:
            # Membership is each caller's own; the room's events after a seq are the same for all its polls.
            synced = await polls.shared((room_id, seq, mine[room_id], limit),
                                        functools.partial(_room_sync, pool, room_id, seq, mine[room_id], limit))
            rooms[room_id] = api.PolledRoom(events=synced.events, last_seq=synced.last_seq, has_more=synced.has_more,
                                            typing=polls.typing.typing_in(principal.tenant_id, room_id))
    return api.PollResult(rooms=rooms, left=left, timed_out=False)


def _empty_answer(principal: Principal, wanted: Mapping[str, int], typing_in: _TypingIn) -> api.PollResult:
    rooms = {room_id: api.PolledRoom(events=[], last_seq=seq, has_more=False,
                                     typing=typing_in(principal.tenant_id, room_id))
             for room_id, seq in wanted.items()}
    return api.PollResult(rooms=rooms, left=[], timed_out=True)


async def _disconnect(request: Request) -> None:
    # A GET has no body: after its one http.request message, the next one is the client going away.
    while (await request.receive())["type"] != "http.disconnect":
        pass


ENDPOINTS = [
    Endpoint("POST", "/sync", sync,
             "Events after the client's seq in many rooms at once (redacted as /events), plus the rooms the caller "
             "joined but did not list and the listed ones it no longer reads",
             body=api.SyncRequest, response=api.SyncResult, errors=(Forbidden,)),
    Endpoint("GET", "/poll", poll,
             "Long-poll: answers as soon as a listed room has events after its seq (or at the timeout, empty), "
             "with who is typing in each room",
             response=api.PollResult, query=(POLL_ROOMS, POLL_TIMEOUT, POLL_LIMIT),
             errors=(Forbidden, RoomNotFound, NotAMember, PollsFull, TooManyPolls)),
]
