"""Publishing to JetStream with every acknowledgement arriving on one reply inbox.

nats-py's `publish_async` costs a semaphore, a future with a done-callback and a JSON parse into a
dataclass per message. The relay only needs to know when JetStream has stored (or deduplicated) a
whole batch, so each message's reply subject is `<inbox>.<msg id>` and one subscription ticks them off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

MSG_ID_HEADER = "Nats-Msg-Id"


class PublishError(Exception):
    """JetStream refused a message, or nothing listens on its subject."""


class _ApiError(msgspec.Struct):
    code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct):
    stream: str = ""
    error: _ApiError | None = None


_pub_ack = msgspec.json.Decoder(_PubAck)


class _Round:
    """One `publish_all` call: the message ids still unacknowledged and the future that settles it."""

    def __init__(self) -> None:
        self.unacked: set[str] = set()
        self.sealed = False  # every message is out; the round ends when `unacked` empties
        self.error: str | None = None
        self.done = asyncio.Event()

    def fail(self, error: str) -> None:
        self.error = self.error or error
        self.done.set()

    def settle_if_complete(self) -> None:
        if self.sealed and not self.unacked:
            self.done.set()


class AckedPublisher:
    """Publishes batches to JetStream, each message deduplicated by its id; one batch at a time."""

    def __init__(self, nc: NatsClient, *, ack_wait: float) -> None:
        self._nc = nc
        self._ack_wait = ack_wait
        self._inbox = nc.new_inbox() + "."
        self._sub: Subscription | None = None
        self._round: _Round | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox + "*", cb=self._on_ack)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def publish_all(self, messages: Iterable[tuple[str, bytes, str]]) -> None:
        """Publish each (subject, payload, message id); return once JetStream acknowledged every one.

        Raises PublishError when one is refused, TimeoutError when an acknowledgement is not in after `ack_wait`.
        """
        self._round = batch = _Round()
        try:
            for subject, payload, msg_id in messages:
                batch.unacked.add(msg_id)
                await self._nc.publish(subject, payload, reply=self._inbox + msg_id, headers={MSG_ID_HEADER: msg_id})
            batch.sealed = True
            batch.settle_if_complete()
            await asyncio.wait_for(batch.done.wait(), self._ack_wait)
        finally:
            self._round = None
        if batch.error is not None:
            raise PublishError(batch.error)

    async def _on_ack(self, msg: Msg) -> None:
        batch = self._round
        msg_id = msg.subject[len(self._inbox):]
        if batch is None or msg_id not in batch.unacked:
            return  # the answer to a round that already gave up
        try:
            ack = _pub_ack.decode(msg.data)
        except msgspec.DecodeError:
            # e.g. a 503 status (no responders): no stream takes this subject, or JetStream is down
            batch.fail(f"no PubAck for message {msg_id}: status {(msg.headers or {}).get('Status', '?')}")
            return
        if ack.error is not None:
            batch.fail(f"JetStream refused message {msg_id}: {ack.error.code} {ack.error.description}")
            return
        batch.unacked.discard(msg_id)
        batch.settle_if_complete()
