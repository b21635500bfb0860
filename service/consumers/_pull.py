"""Pulling batches from a durable JetStream consumer through one callback subscription.

nats-py's `fetch` waits for every message with a task of its own (`next_msg`: a task, a `wait_for`
and a uuid), tens of microseconds per message, which a consumer of every room event pays a thousand
times a second. Here one pull request asks for a batch, its messages land in a list from the
subscription's callback, and `next_batch` hands over whatever has arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_STATUS = "Status"  # the headers nats-py fills from a status line ("NATS/1.0 408 Request Timeout")
_DESCRIPTION = "Description"
_HEARTBEAT = "100"
_REQUEST_OVER = ("404", "408")  # nothing there, expired: ask again
# How long past its expiry a pull request may stay silent before it counts as lost (NATS reconnected).
_LOST_AFTER_SECONDS = 1.0


class PullError(Exception):
    """JetStream answered a pull request with an error (no such consumer, no JetStream, leadership change ...)."""


class Puller:
    """One durable pull consumer's messages, a batch at a time; `start()` first, `stop()` when done."""

    def __init__(
        self, nc: NatsClient, stream: str, durable: str, *, batch: int, expires: float, linger: float = 0.0
    ) -> None:
        self._nc = nc
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._request = msgspec.json.encode({"batch": batch, "expires": int(expires * 1_000_000_000)})
        self._batch = batch
        self._expires = expires
        self._linger = linger
        self._sub: Subscription | None = None
        self._ready: list[Msg] = []
        self._arrived = asyncio.Event()
        self._owed = 0  # messages the pull request in flight may still bring
        self._requested_at = 0.0
        self._error: str | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def next_batch(self) -> list[Msg]:
        """What arrived since the last call; with nothing there, waits up to `expires` for more ([] if none came).

        Once something arrived, waits `linger` more for the rest of its burst while the batch is not full.

        Raises PullError when JetStream refused the pull request (the next call asks again).
        """
        if not self._ready:
            await self._pull_if_idle()
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), self._expires + _LOST_AFTER_SECONDS)
        if self._ready and self._owed and self._linger:
            await asyncio.sleep(self._linger)
        batch, self._ready = self._ready, []
        if not batch and self._error is not None:
            error, self._error = self._error, None
            raise PullError(error)
        if not batch and time.monotonic() - self._requested_at > self._expires + _LOST_AFTER_SECONDS:
            self._owed = 0  # the request was lost with the connection, not answered: ask again
        # Ask for the next batch while the caller works on this one.
        await self._pull_if_idle()
        return batch

    async def _pull_if_idle(self) -> None:
        if self._owed:
            return
        self._owed = self._batch
        self._requested_at = time.monotonic()
        await self._nc.publish(self._next_subject, self._request, reply=self._inbox)

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get(_STATUS)
        if status is None:
            self._owed = max(0, self._owed - 1)
            self._ready.append(msg)
        elif status == _HEARTBEAT:
            return
        else:  # any other status ends the request
            self._owed = 0
            if status not in _REQUEST_OVER:
                self._error = f"{status} {headers.get(_DESCRIPTION, '')}".strip()
        self._arrived.set()
