"""RoomlogClient: the REST API (one method per route, generated) over a transport that retries safely."""

from __future__ import annotations

import asyncio
import datetime
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx

from roomlog_client._api import Message, Operations, RoomEvent, SendResult
from roomlog_client.errors import ApiError, ConnectionLost, RateLimited, ServiceUnavailable, api_error
from roomlog_client.live import SeqStore, Subscription

# Repeating these cannot do anything twice; a POST is repeated only when it carries a client_msg_id.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

RetryHook = Callable[[int, float, Exception | None, httpx.Response | None], Awaitable[None] | None]


class RoomlogClient(Operations):
    """A client of one roomlog server, acting as one user.

    Authenticate with a tenant API key plus the user it acts for (`api_key=`, `user_id=`), or with tokens
    from `await RoomlogClient.login(...)` (refreshed by itself once the access token is refused).

    Retries: a 429 or 503 is retried after its `Retry-After` (when that is at most `max_retry_wait`
    seconds), and a connection failure after a short backoff — but only for requests that are safe to
    repeat: GET/PUT/DELETE, and POSTs with a `client_msg_id` (which `send_message` always sets), so a
    retry is never a second message. After `max_retries`, the typed error is raised.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, user_id: str | None = None,
                 access_token: str | None = None, refresh_token: str | None = None,
                 http: httpx.AsyncClient | None = None, max_retries: int = 4, max_retry_wait: float = 30.0,
                 timeout: float = 30.0, on_retry: RetryHook | None = None) -> None:
        if (api_key is None) == (access_token is None):
            raise ValueError("give either api_key (with user_id) or access_token")
        if api_key is not None and not user_id:
            raise ValueError("an api_key needs the user_id it acts for")
        self.base_url = base_url.rstrip("/")
        self.api_key, self.user_id = api_key, user_id
        self.access_token, self.refresh_token = access_token, refresh_token
        self.max_retries, self.max_retry_wait = max_retries, max_retry_wait
        self.on_retry = on_retry
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._own_http = http is None

    @classmethod
    async def login(cls, base_url: str, email: str, password: str, **options: Any) -> RoomlogClient:
        """Log in with email and password; the client keeps (and refreshes) the session's tokens."""
        anonymous = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=options.get("timeout", 30.0))
        try:
            answer = await anonymous.post("/auth/login", json={"email": email, "password": password})
        finally:
            await anonymous.aclose()
        if answer.status_code != 200:
            raise api_error(answer.status_code, _json(answer), _retry_after(answer))
        tokens = answer.json()
        return cls(base_url, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"], **options)

    async def __aenter__(self) -> RoomlogClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # --- the transport -------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.api_key is not None:
            return {"X-API-Key": self.api_key, "X-User-Id": str(self.user_id)}
        return {"Authorization": f"Bearer {self.access_token}"}

    async def _call(self, method: str, path: str, *, query: dict[str, Any] | None, body: Any) -> Any:
        """One API call with the retry rules above; the decoded JSON answer (text for non-JSON answers)."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        repeatable = method in _IDEMPOTENT or (isinstance(body, Mapping) and bool(body.get("client_msg_id")))
        refreshed = False
        attempt = 0
        while True:
            try:
                answer = await self._http.request(method, path, params=params, json=body, headers=self._headers())
            except httpx.TransportError as failure:
                if not repeatable or attempt >= self.max_retries:
                    raise ConnectionLost(f"{method} {path}: {failure!r}") from failure
                attempt += 1
                await self._pause(attempt, _backoff(attempt), failure, None)
                continue
            if answer.status_code == 401 and self.refresh_token and not refreshed:
                refreshed = True
                await self._refresh()
                continue
            if answer.is_success:
                if not answer.content:
                    return None
                if answer.headers.get("content-type", "").startswith("application/json"):
                    return answer.json()
                return answer.text
            wait = _retry_after(answer)
            retry = answer.status_code in (429, 503) and attempt < self.max_retries
            retry = retry and (wait if wait is not None else _backoff(attempt + 1)) <= self.max_retry_wait
            # A 503 after the request may have been applied is only repeated when that is harmless.
            if retry and (answer.status_code == 429 or repeatable):
                attempt += 1
                await self._pause(attempt, wait if wait is not None else _backoff(attempt), None, answer)
                continue
            raise api_error(answer.status_code, _json(answer), wait)

    async def _pause(self, attempt: int, seconds: float, failure: Exception | None,
                     answer: httpx.Response | None) -> None:
        if self.on_retry is not None:
            result = self.on_retry(attempt, seconds, failure, answer)
            if result is not None:
                await result
        await asyncio.sleep(seconds)

    async def _refresh(self) -> None:
        answer = await self._http.post("/auth/refresh", json={"refresh_token": self.refresh_token})
        if answer.status_code != 200:
            raise api_error(answer.status_code, _json(answer), _retry_after(answer))
        tokens = answer.json()
        self.access_token, self.refresh_token = tokens["access_token"], tokens["refresh_token"]

    # --- what integrators reach for ------------------------------------------------------------------

    async def send_message(self, room_id: str, content: str, *, client_msg_id: str | None = None,
                           **fields: Any) -> SendResult:
        """Send a message; a `client_msg_id` is assigned when none is given, so retries never duplicate it.

        `fields` are the other fields of the send body (`meta`, `thread_id`, `type`, `attachments`, …).
        """
        body = {"content": content, "client_msg_id": client_msg_id or uuid.uuid4().hex, **fields}
        return await self.post_rooms_room_id_messages(room_id, cast(Any, body))

    async def iter_messages(self, room_id: str, *, after_seq: int = 0, page_size: int = 100,
                            thread_id: str | None = None) -> AsyncIterator[Message]:
        """Every message of a room after `after_seq`, in seq order, fetched a page at a time."""
        while True:
            page = await self.get_rooms_room_id_messages(room_id, after_seq=after_seq, limit=page_size,
                                                         thread_id=thread_id)
            for message in page:
                yield message
            if len(page) < page_size:
                return
            after_seq = page[-1]["seq"]

    async def iter_events(self, room_id: str, *, after_seq: int = 0, page_size: int = 1000) -> AsyncIterator[RoomEvent]:
        """The room's log after `after_seq`, every event type, in seq order, a page at a time."""
        while True:
            page = await self.get_rooms_room_id_events(room_id, after_seq=after_seq, limit=page_size)
            for event in page:
                yield event
            if len(page) < page_size:
                return
            after_seq = page[-1]["seq"]

    def subscribe(self, rooms: Mapping[str, int] | list[str], *, store: SeqStore | None = None,
                  signals: bool = False, on_state: Callable[[str], None] | None = None) -> Subscription:
        """A live, resuming stream of the rooms' events: `async for event in client.subscribe(...)`.

        `rooms` maps room ids to the last seq already seen (a list means "from the start"); a `store`
        supplies and persists those positions instead. See `Subscription`.
        """
        positions = {room: 0 for room in rooms} if isinstance(rooms, list) else dict(rooms)
        return Subscription(self, positions, store=store, signals=signals, on_state=on_state)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.2, 0.4, 0.8 … seconds, at most 10."""
    return float(min(10.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2))


def _retry_after(answer: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), if the answer has one."""
    value = answer.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


__all__ = ["ApiError", "RateLimited", "RoomlogClient", "ServiceUnavailable"]
