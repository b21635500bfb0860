"""The webhook sender: works through the DELIVERIES queue and POSTs each job to its webhook.

Every instance pulls from the one durable "webhooks" consumer, so each job is sent by one instance at a
time. A 2xx answer acks the job. While a call is in flight the sender tells JetStream it is still
working, so a slow receiver does not get the same job twice at once. A failed attempt is left unacked
after one last such signal: JetStream delivers the job again when that attempt's ack wait — the
consumer's backoff step for it — runs out. (A nak with a delay would not do: with a backoff configured,
the server counts the delay from an ack wait that has already passed, so the waits come out longer than
asked for.) The last allowed attempt that fails records a `delivery.failed` event (a dead letter) and
acks the job.

The body is the job's payload as JSON; the headers say what it is (`X-Roomlog-Event`), which delivery
(`X-Roomlog-Delivery`, the same on every retry, so receivers can drop repeats), and sign it
(`X-Roomlog-Signature`, see service.consumers.webhooks).

bot.triggered jobs (service/consumers/bots.py) take the same path to the bot's webhook, or as a NATS request
to the bot's subject, with the same headers; a reply within the call's time limit counts as a 2xx. Each
attempt carries a fresh reply token, so a late retry still hands the bot a token it can use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from eventstore.append import Appender
from eventstore.types import Queryable
from projections.streams import deliveries_stream
from schemas.config import Settings
from schemas.delivery import DeliveryJob
from schemas.events import DeliveryFailed, EventMetadata
from service.consumers.bots import bot_target, is_bot_job, with_reply_token
from service.consumers.egress import ForbiddenAddress, OutboundHttp, Resolver, Unreachable
from service.consumers.webhooks import (
    CORRELATION_HEADER,
    DELIVERY_HEADER,
    EVENT_HEADER,
    MSG_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Target,
    sign,
    target_of,
)
from service.identity.tokens import TokenSigner
from service.observability.metrics import Metrics
from service.realtime.jetstream import DELIVERIES_STREAM, WEBHOOK_CONSUMER, webhook_consumer

log = structlog.get_logger("roomlog.webhooks")

# Calls in flight per instance; one slow receiver holds at most its own calls, not the queue.
MAX_IN_FLIGHT = 64
# Queuings this process delivered (or settled) lately: a copy JetStream hands over again afterwards is acked
# without a second call.
RECENT_DONE = 10_000
FETCH_WAIT_SECONDS = 2.0
READY_WAIT_SECONDS = 0.02
ERROR_CHARS = 300

_jobs = msgspec.json.Decoder(DeliveryJob)
_encoder = msgspec.json.Encoder()


async def pull_batch(sub: JetStreamContext.PullSubscription, batch: int, *, wait: float) -> list[Msg]:
    """Up to `batch` messages: waits up to `wait` for the first, then takes whatever else is ready.

    (A plain `fetch(batch)` on an idle consumer waits for the whole batch or the whole timeout.)
    """
    first = await sub.fetch(1, timeout=wait)
    if batch <= 1:
        return first
    try:
        return first + await sub.fetch(batch - 1, timeout=READY_WAIT_SECONDS)
    except TimeoutError:
        return first


def generation_of(headers: dict[str, str] | None, job: DeliveryJob) -> str:
    """Which queuing of a delivery this is: its message id (the delivery id, or `<id>:retry:<n>` after a retry)."""
    return (headers or {}).get(MSG_ID_HEADER) or job.delivery_id


async def record_failure(
    appender: Appender, job: DeliveryJob, *, generation: str, attempts: int, error: str, at: datetime
) -> None:
    """Append the dead letter of one queuing of a delivery; recording the same queuing twice appends once."""
    event = DeliveryFailed(
        delivery_id=job.delivery_id, kind=job.kind, user_id=job.user_id, attempts=attempts, last_attempt_at=at,
        error=error[:ERROR_CHARS], webhook_id=job.webhook_id, room_id=job.room_id, message_id=job.message_id,
        notification_id=job.notification_id, topic=job.topic, job=msgspec.to_builtins(job),
    )
    await appender.append(
        deliveries_stream(job.tenant_id), [event], tenant_id=job.tenant_id, create_stream=True,
        metadata=EventMetadata(tenant_id=job.tenant_id, actor="system", correlation_id=job.delivery_id),
        # The sender's last attempt and a max-deliveries advisory may both report one queuing.
        idempotency_key=f"failed:{generation}",
    )


class WebhookSender:
    """Pulls delivery jobs and calls webhooks until cancelled."""

    def __init__(
        self, js: JetStreamContext, db: Queryable, appender: Appender, settings: Settings,
        *, clock: Callable[[], float] = time.time, metrics: Metrics | None = None, nc: NatsClient | None = None,
        signer: TokenSigner | None = None,
    ) -> None:
        self._js = js
        self._nc = nc
        self._signer = signer
        self._db = db
        self._appender = appender
        self._settings = settings
        self._clock = clock
        self._outcomes = metrics.webhook_outcome if metrics is not None else {}
        config = webhook_consumer(settings)
        # JetStream redelivers after the shortest of these (a consumer with backoff waits backoff[0]).
        self._progress_every = max(0.05, min([config.ack_wait or 30.0, *(config.backoff or [])]) / 2)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Per queuing being worked on here: resolved with whether it was settled (acked). When JetStream's ack
        # wait runs out on a busy instance it hands the job over again; a copy waits for the first instead of
        # calling the receiver twice.
        self._working: dict[str, asyncio.Future[bool]] = {}
        self._done: OrderedDict[str, None] = OrderedDict()
        self.sent = 0

    async def run(self) -> None:
        """Fetch jobs and send them, at most MAX_IN_FLIGHT at once, for ever."""
        # Its own lookup threads and connections, apart from the runtime's pair for quick actions and
        # registration checks: receivers that hang must not hold up calls a person is waiting for.
        resolver = Resolver(timeout=self._settings.webhook_timeout_seconds)
        http = OutboundHttp(resolver, public_only=not self._settings.webhook_allow_private,
                            timeout=self._settings.webhook_timeout_seconds, connections=MAX_IN_FLIGHT)
        try:
            sub = await self._js.pull_subscribe_bind(durable=WEBHOOK_CONSUMER, stream=DELIVERIES_STREAM)
            try:
                while True:
                    await self._fetch_and_send(sub, http)
            finally:
                for task in self._in_flight:
                    task.cancel()
                await asyncio.gather(*self._in_flight, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        finally:
            resolver.close()  # unacked jobs come back from JetStream: no lookup is worth waiting for
            await http.close()

    async def _fetch_and_send(self, sub: JetStreamContext.PullSubscription, http: OutboundHttp) -> None:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        try:
            msgs = await pull_batch(sub, MAX_IN_FLIGHT - len(self._in_flight), wait=FETCH_WAIT_SECONDS)
        except TimeoutError:  # nothing queued (nats' TimeoutError is one too)
            return
        except Exception as exc:  # NATS reconnecting, the consumer being re-created: wait and pull again
            log.warning("fetching webhook jobs failed", error=repr(exc))
            await asyncio.sleep(1.0)
            return
        for msg in msgs:
            task = asyncio.create_task(self._handle(msg, http))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _handle(self, msg: Msg, http: OutboundHttp) -> None:
        try:
            job = _jobs.decode(msg.data)
        except msgspec.DecodeError:
            log.error("dropping an undecodable delivery job", subject=msg.subject)
            await msg.term()
            return
        queuing = generation_of(msg.headers, job)
        if queuing in self._done or queuing in self._working:
            await self._settle_copy(msg, queuing)
            return
        settled = asyncio.get_running_loop().create_future()
        self._working[queuing] = settled
        try:
            # Heartbeats from the first moment: the ack wait (backoff[0], 1 s by default) runs from the fetch, and
            # a busy instance could otherwise pass it before the call even starts, so JetStream sent the job again.
            async with self._working_on(msg):
                settled.set_result(await self._deliver(msg, job, http))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database or NATS failed us, not the receiver: unacked, the job comes back after its wait.
            log.exception("delivery job failed", delivery_id=job.delivery_id)
        finally:
            del self._working[queuing]
            if not settled.done():
                settled.set_result(False)
            if settled.result():
                self._done[queuing] = None
                while len(self._done) > RECENT_DONE:
                    self._done.popitem(last=False)

    async def _settle_copy(self, msg: Msg, queuing: str) -> None:
        """A job JetStream handed over again while (or after) this process handled it: ack it once that
        settled it; otherwise leave it unacked, and it comes back as the retry it is."""
        working = self._working.get(queuing)
        if working is not None:
            async with self._working_on(msg):
                settled = await asyncio.shield(working)
        else:
            settled = True
        if settled:
            await msg.ack()
            self._count("repeat_dropped")

    async def _deliver(self, msg: Msg, job: DeliveryJob, http: OutboundHttp) -> bool:
        """Call the receiver; whether the job is settled (acked: delivered, dead-lettered or nobody to call)."""
        if is_bot_job(job):
            target = await bot_target(self._db, job.tenant_id, job.webhook_id)
        else:
            target = await target_of(self._db, job.tenant_id, job.webhook_id)
        if target is None:
            await msg.ack()  # the webhook was deleted: nobody to deliver to
            self._count("webhook_deleted")
            return True
        error = await self._call(http, target, job)
        if error is None:
            self.sent += 1
            await msg.ack()
            self._count("delivered")
            return True
        attempt = msg.metadata.num_delivered
        if attempt < self._settings.webhook_max_deliver:
            log.info("webhook call failed, will retry", delivery_id=job.delivery_id, attempt=attempt, error=error)
            await msg.in_progress()  # the backoff step counts from now
            self._count("retried")
            return False
        log.warning("webhook delivery failed for good", delivery_id=job.delivery_id, attempts=attempt, error=error)
        await record_failure(self._appender, job, generation=generation_of(msg.headers, job), attempts=attempt,
                             error=error, at=datetime.fromtimestamp(self._clock(), UTC))
        await msg.ack()
        self._count("dead_lettered")
        return True

    def _count(self, outcome: str) -> None:
        counter = self._outcomes.get(outcome)
        if counter is not None:
            counter.inc()

    async def _call(self, http: OutboundHttp, target: Target, job: DeliveryJob) -> str | None:
        """POST the job; None on a 2xx answer, else what went wrong."""
        payload = job.payload
        if is_bot_job(job) and self._signer is not None:
            payload = with_reply_token(job, self._signer, self._settings.bot_token_seconds)
        body = _encoder.encode(payload)
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "roomlog-webhooks",
            SIGNATURE_HEADER: sign(target.secret, timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: job.delivery_id,
            EVENT_HEADER: job.event,
        }
        if job.correlation_id is not None:
            headers[CORRELATION_HEADER] = job.correlation_id
        if target.nats_subject is not None:
            return await self._request(target.nats_subject, body, headers)
        if not target.secret:  # a bot imported without its secret (exports carry none): never sign with nothing
            return "no signing secret: give the bot one with PATCH /bots/{bot_id}"
        try:
            answer = await http.post(target.url, body, headers)
        except TimeoutError as exc:
            return str(exc)
        except ForbiddenAddress as exc:
            return f"ForbiddenAddress: {exc}"
        except Unreachable as exc:  # says itself which error it was
            return str(exc) or "unreachable"
        if answer.ok:
            return None
        detail = answer.body[:2000].decode("utf-8", "replace").strip()[:200]
        return f"HTTP {answer.status}" + (f": {detail}" if detail else "")

    async def _request(self, subject: str, body: bytes, headers: dict[str, str]) -> str | None:
        """A NATS request to a bot inside the cluster; None when it replied in time."""
        if self._nc is None:
            return "no NATS connection for bot deliveries"
        try:
            await self._nc.request(subject, body, timeout=self._settings.webhook_timeout_seconds, headers=headers)
        except nats.errors.NoRespondersError:
            return f"no responders on {subject}"
        except nats.errors.TimeoutError:
            return f"timeout after {self._settings.webhook_timeout_seconds:g}s"
        except nats.errors.Error as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    @contextlib.asynccontextmanager
    async def _working_on(self, msg: Msg) -> AsyncIterator[None]:
        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(self._progress_every)
                with contextlib.suppress(nats.errors.Error):
                    await msg.in_progress()

        task = asyncio.create_task(keep_alive())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
