"""REST typing, POST /sync and GET /poll on one instance (the session's real PostgreSQL and NATS)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from schemas.errors import ValidationError
from schemas.realtime import TypingSignal
from service.domain.sync import joined_and_left, parse_room_seqs
from service.realtime.typing import TypingView
from service.runtime import Runtime
from tests.conftest import Tenant, error_of, serving
from tests.service.test_messages import create_room, send_ok


async def poll(client: httpx.AsyncClient, tenant: Tenant, user: str, rooms: dict[str, int], **params: Any
               ) -> httpx.Response:
    query = ",".join(f"{room_id}:{seq}" for room_id, seq in rooms.items())
    return await client.get("/poll", params={"rooms": query, **params}, headers=tenant.as_user(user))


async def sync(client: httpx.AsyncClient, tenant: Tenant, user: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/sync", json=body, headers=tenant.as_user(user))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def until(probe: Callable[[], Awaitable[object]], expected: object, *, within: float = 5.0) -> None:
    """Wait until `probe()` answers `expected` (it is a view fed asynchronously); fail after `within` seconds."""
    seen: object = None
    for _ in range(int(within / 0.02)):
        seen = await probe()
        if seen == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still {seen!r}, not {expected!r}, after {within} s")


async def _now(value: object) -> object:
    return value


# --- pure rules ---------------------------------------------------------------------------------------------

_room_ids = st.text(alphabet="abcdef_0123456789", min_size=1, max_size=64)


@settings(max_examples=30)
@given(st.dictionaries(_room_ids, st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=10))
def test_a_poll_room_list_reads_back_as_the_pairs_it_was_written_from(rooms: dict[str, int]) -> None:
    assert parse_room_seqs(",".join(f"{r}:{s}" for r, s in rooms.items()), max_rooms=10) == rooms


@pytest.mark.parametrize("text", ["", "room_a", "room_a:", ":3", "room_a:-1", "room_a:x", "room_a:1,room_a:2",
                                  "room_a:1,,", f"room_a:{2**63}", "a:1,b:1,c:1", "room_a:\u0661"])
def test_a_malformed_poll_room_list_is_a_400_naming_rooms(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_room_seqs(text, max_rooms=2)
    assert raised.value.field == "rooms"


def test_joined_are_unlisted_rooms_of_the_user_and_left_are_listed_rooms_not_theirs() -> None:
    assert joined_and_left(["a", "b", "gone"], {"a": 1, "b": 2, "new": 0}) == (["new"], ["gone"])


def test_typing_lasts_typing_seconds_after_the_last_signal_or_until_it_stops() -> None:
    now = [100.0]
    view = TypingView(clock=lambda: now[0], typing_seconds=5.0)
    view.note("t", TypingSignal(room_id="r", user_id="ann", typing=True))
    view.note("t", TypingSignal(room_id="r", user_id="bob", typing=True))
    now[0] += 4.0
    view.note("t", TypingSignal(room_id="r", user_id="bob", typing=True))  # bob goes on typing
    assert view.typing_in("t", "r") == ["ann", "bob"]
    assert view.typing_in("other-tenant", "r") == []
    now[0] += 1.0
    assert view.typing_in("t", "r") == ["bob"]  # ann's expired by itself
    view.note("t", TypingSignal(room_id="r", user_id="bob", typing=False))
    assert view.typing_in("t", "r") == []


# --- typing over REST ---------------------------------------------------------------------------------------


async def test_rest_typing_reaches_the_typing_view_over_nats_and_stopping_clears_it(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    room_id = room["room_id"]
    # A poll watches the room's typing signals (and keeps watching a while after it answers).
    assert (await poll(client, tenant, "ann", {room_id: room["last_seq"]}, timeout=0)).status_code == 200
    typing = await client.post(f"/rooms/{room_id}/typing", json={}, headers=tenant.as_user("bob"))
    assert typing.status_code == 200, typing.text

    async def typing_now() -> list[str]:
        answer = (await poll(client, tenant, "ann", {room_id: room["last_seq"]}, timeout=0)).json()
        names: list[str] = answer["rooms"][room_id]["typing"]
        return names

    await until(lambda: typing_now(), ["bob"])
    await client.post(f"/rooms/{room_id}/typing", json={"typing": False}, headers=tenant.as_user("bob"))
    await until(lambda: typing_now(), [])


async def test_rest_typing_is_for_members_of_the_room(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    outsider = await client.post(f"/rooms/{room['room_id']}/typing", json={}, headers=tenant.as_user("eve"))
    assert error_of(outsider, 403)["code"] == "NOT_A_MEMBER"
    nowhere = await client.post("/rooms/room_nowhere/typing", json={}, headers=tenant.as_user("eve"))
    assert error_of(nowhere, 404)["code"] == "ROOM_NOT_FOUND"
    bad = await client.post(f"/rooms/{room['room_id']}/typing", json={"typing": "yes"}, headers=tenant.as_user("bob"))
    assert error_of(bad, 400)["field"] == "typing"


# --- POST /sync ---------------------------------------------------------------------------------------------


async def test_sync_answers_each_listed_room_after_its_seq_redacted_as_events_are(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first = await create_room(client, tenant, "ann", ["bob"])
    second = await create_room(client, tenant, "bob", ["ann"])
    a, b = first["room_id"], second["room_id"]
    start_a = first["last_seq"]
    sent = [await send_ok(client, tenant, a, "bob", f"m{n}") for n in range(3)]
    doomed = (await client.get(f"/rooms/{a}/messages", headers=tenant.as_user("ann"))).json()[0]["message_id"]
    assert (await client.delete(f"/rooms/{a}/messages/{doomed}", headers=tenant.as_user("bob"))).status_code == 200
    answer = await sync(client, tenant, "ann", {"rooms": {a: start_a, b: second["last_seq"]}, "limit": 2})
    assert answer["joined"] == [] and answer["left"] == []
    page = answer["rooms"][a]
    assert [e["seq"] for e in page["events"]] == sent[:2]
    assert page["last_seq"] == sent[1] and page["has_more"] is True
    # The same entries, redaction included, as GET /rooms/{id}/events gives.
    events = (await client.get(f"/rooms/{a}/events", params={"after_seq": start_a, "limit": 2},
                               headers=tenant.as_user("ann"))).json()
    assert page["events"] == events
    assert page["events"][0]["data"]["content"] == ""  # the deleted message
    assert answer["rooms"][b] == {"events": [], "last_seq": second["last_seq"], "has_more": False}
    rest = await sync(client, tenant, "ann", {"rooms": {a: page["last_seq"]}, "limit": 2})
    assert [e["type"] for e in rest["rooms"][a]["events"]] == ["message.sent", "message.deleted"]
    assert rest["rooms"][a]["has_more"] is False
    assert rest["joined"] == [b]


async def test_sync_lists_unlisted_rooms_as_joined_and_rooms_no_longer_read_as_left(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    kept = await create_room(client, tenant, "cat", ["dan"])
    left = await create_room(client, tenant, "cat", ["dan"])
    foreign = await create_room(client, other_tenant, "dan", ["cat"])
    fresh = await create_room(client, tenant, "cat", ["dan"])
    removed = await client.delete(f"/rooms/{left['room_id']}/members/dan", headers=tenant.as_user("dan"))
    assert removed.status_code == 200, removed.text
    listed = {kept["room_id"]: 0, left["room_id"]: 1, foreign["room_id"]: 0, "room_made_up": 0}
    answer = await sync(client, tenant, "dan", {"rooms": listed})
    assert answer["joined"] == [fresh["room_id"]]
    assert answer["left"] == sorted([left["room_id"], foreign["room_id"], "room_made_up"])
    assert list(answer["rooms"]) == [kept["room_id"]]


async def test_sync_refuses_more_rooms_than_one_call_may_name_and_bad_seqs(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    too_many = {f"room_{n}": 0 for n in range(runtime.settings.sync_max_rooms + 1)}
    response = await client.post("/sync", json={"rooms": too_many}, headers=tenant.as_user("ann"))
    assert error_of(response, 400)["field"] == "rooms"
    for body in ({"rooms": {"room_x": -1}}, {"rooms": {"room_x": "1"}}, {"rooms": {}, "limit": 101}, {}):
        response = await client.post("/sync", json=body, headers=tenant.as_user("ann"))
        assert error_of(response, 400)["code"] == "VALIDATION_ERROR", body


# --- GET /poll ----------------------------------------------------------------------------------------------


async def test_a_poll_answers_at_once_when_a_room_already_has_newer_events(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    seq = await send_ok(client, tenant, room["room_id"], "bob", "already there")
    started = time.monotonic()
    answer = (await poll(client, tenant, "ann", {room["room_id"]: room["last_seq"]}, timeout=20)).json()
    assert time.monotonic() - started < 5
    assert answer["timed_out"] is False
    assert [e["seq"] for e in answer["rooms"][room["room_id"]]["events"]] == [seq]


async def test_a_waiting_poll_wakes_on_a_send_with_the_events_of_that_room(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    quiet = await create_room(client, tenant, "ann", ["bob"])
    busy = await create_room(client, tenant, "ann", ["bob"])
    waiting = asyncio.create_task(poll(client, tenant, "ann", {quiet["room_id"]: quiet["last_seq"],
                                                               busy["room_id"]: busy["last_seq"]}, timeout=20))
    await asyncio.sleep(0.3)  # the poll is waiting (a send before it would answer it at once, too)
    assert not waiting.done()
    seq = await send_ok(client, tenant, busy["room_id"], "bob", "wake up")
    answer = (await asyncio.wait_for(waiting, 5)).json()
    assert answer["timed_out"] is False
    assert [e["seq"] for e in answer["rooms"][busy["room_id"]]["events"]] == [seq]
    assert answer["rooms"][quiet["room_id"]]["events"] == []


async def test_a_poll_without_events_answers_empty_at_its_timeout(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    started = time.monotonic()
    answer = (await poll(client, tenant, "ann", {room["room_id"]: room["last_seq"]}, timeout=1)).json()
    assert 1.0 <= time.monotonic() - started < 4
    assert answer == {"rooms": {room["room_id"]: {"events": [], "last_seq": room["last_seq"], "has_more": False,
                                                  "typing": []}},
                      "left": [], "timed_out": True}


async def test_a_poll_is_for_members_of_every_room_it_names(client: httpx.AsyncClient, tenant: Tenant) -> None:
    mine = await create_room(client, tenant, "ann", ["bob"])
    theirs = await create_room(client, tenant, "cat", ["dan"])
    refused = await poll(client, tenant, "ann", {mine["room_id"]: 0, theirs["room_id"]: 0}, timeout=0)
    assert error_of(refused, 403)["code"] == "NOT_A_MEMBER"
    unknown = await poll(client, tenant, "ann", {"room_nowhere": 0}, timeout=0)
    assert error_of(unknown, 404)["code"] == "ROOM_NOT_FOUND"
    malformed = await client.get("/poll", params={"rooms": "no-seq"}, headers=tenant.as_user("ann"))
    assert error_of(malformed, 400)["field"] == "rooms"


async def test_a_member_removed_while_polling_gets_the_room_as_left(client: httpx.AsyncClient, tenant: Tenant) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    waiting = asyncio.create_task(poll(client, tenant, "bob", {room["room_id"]: room["last_seq"]}, timeout=20))
    await asyncio.sleep(0.3)
    assert (await client.delete(f"/rooms/{room['room_id']}/members/bob",
                                headers=tenant.as_user("ann"))).status_code == 200
    answer = (await asyncio.wait_for(waiting, 5)).json()
    assert answer == {"rooms": {}, "left": [room["room_id"]], "timed_out": False}


async def test_polls_beyond_the_per_user_and_per_instance_bounds_are_refused_with_retry_after(
    client: httpx.AsyncClient, tenant: Tenant, runtime: Runtime
) -> None:
    polls = runtime.realtime.polls
    room = await create_room(client, tenant, "ann", ["bob"])
    rooms = {room["room_id"]: room["last_seq"]}
    waiting = [asyncio.create_task(poll(client, tenant, "ann", rooms, timeout=20)) for _ in range(polls.max_per_user)]
    try:
        await until(lambda: _now(polls.waiting), polls.max_per_user)
        over_user = await poll(client, tenant, "ann", rooms, timeout=20)
        assert error_of(over_user, 429)["code"] == "TOO_MANY_POLLS"
        assert over_user.headers["Retry-After"] == "1"
        saved, polls.max_waiting = polls.max_waiting, polls.waiting
        try:
            over_instance = await poll(client, tenant, "bob", rooms, timeout=20)
        finally:
            polls.max_waiting = saved
        assert error_of(over_instance, 503)["code"] == "POLLS_FULL"
        assert over_instance.headers["Retry-After"] == "1"
        await send_ok(client, tenant, room["room_id"], "bob", "free them")
        assert all(r.status_code == 200 for r in await asyncio.wait_for(asyncio.gather(*waiting), 5))
    finally:
        for task in waiting:
            task.cancel()
    assert polls.waiting == 0


@pytest.fixture(scope="module")
async def live_url(app: Starlette) -> AsyncIterator[str]:
    """The session app served by uvicorn on a real port, so a client can really hang up."""
    async for url in serving(app):
        yield url


async def test_a_client_that_goes_away_mid_poll_frees_its_slot(
    live_url: str, tenant: Tenant, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    room = await create_room(client, tenant, "ann", ["bob"])
    polls = runtime.realtime.polls
    async with httpx.AsyncClient(base_url=f"http://{live_url}") as http:
        gone = asyncio.create_task(http.get("/poll", params={"rooms": f"{room['room_id']}:{room['last_seq']}",
                                                             "timeout": 30}, headers=tenant.as_user("ann")))
        await until(lambda: _now(polls.waiting), 1)
        gone.cancel()  # closes the connection
        with pytest.raises(asyncio.CancelledError):
            await gone
    await until(lambda: _now(polls.waiting), 0)


async def test_polls_woken_together_share_one_read_of_a_room_and_a_later_poll_reads_again(runtime: Runtime) -> None:
    polls = runtime.realtime.polls
    reads = 0
    gate = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await gate.wait()
        return reads

    together = [asyncio.create_task(polls.shared(("room", 1), read)) for _ in range(3)]
    await asyncio.sleep(0)  # let each of them ask before the read answers
    gate.set()
    assert await asyncio.gather(*together) == [1, 1, 1]
    assert await polls.shared(("room", 1), read) == 2
