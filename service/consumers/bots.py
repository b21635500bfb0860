"""bot.triggered deliveries: the jobs a message calls for, where each goes, and the reply token each attempt carries.

The webhook job producer (service/consumers/offline.py) asks `BotJobs` about every `message.sent` of a tenant
with bots; the pure rule (service/domain/bots.py) decides which bots it triggers, so a bot's own messages never
trigger one. Each job goes through the webhook sender like any other — signed, retried with backoff,
dead-lettered after the last attempt (a failed notification whose topic is `bot.triggered`) — to the bot's
webhook URL, or as a NATS request to its subject (a reply acks it). The delivery id is
`<position>:bot:<bot_id>`, so a redelivered event queues nothing new, and it is the same on every retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from eventstore.types import Queryable
from projections.bots import active_bot, bot_users
from projections.members import list_members
from projections.messages import page_of_messages
from projections.rooms import fetch_room
from schemas.delivery import DeliveryJob
from schemas.events import MessageSent, RecordedEvent
from service.consumers.webhooks import Target
from service.domain.bots import Trigger, triggered
from service.identity.auth import TtlCache
from service.identity.tokens import TokenSigner

BOT_EVENT = "bot.triggered"
BOT_TARGET_PREFIX = "bot:"
# How long an instance trusts its list of a tenant's bots: a new bot gets deliveries within this time.
BOTS_CACHE_SECONDS = 2.0
_ID_SAFE = "@!$&'()*+,;="


def is_bot_job(job: DeliveryJob) -> bool:
    """Whether a delivery job is a bot.triggered one (its `webhook_id` names the bot)."""
    return job.webhook_id.startswith(BOT_TARGET_PREFIX)


async def bot_target(conn: Queryable, tenant_id: str, webhook_id: str) -> Target | None:
    """Where a bot job goes now, or None once the bot was deleted."""
    row = await active_bot(conn, tenant_id, webhook_id.removeprefix(BOT_TARGET_PREFIX))
    if row is None:
        return None
    return Target(webhook_id, row["webhook_url"] or "", row["secret"] or "", nats_subject=row["nats_subject"])


def with_reply_token(job: DeliveryJob, signer: TokenSigner, ttl_seconds: int) -> dict[str, Any]:
    """The job's payload with a fresh reply token: a bearer token acting as the bot, valid for `ttl_seconds`."""
    token, expires_at = signer.issue(tenant_id=job.tenant_id, user_id=job.user_id, role="bot", session_id=None,
                                     token_type="bot", ttl_seconds=ttl_seconds)
    return {**job.payload, "reply": {"token": token, "expires_at": expires_at,
                                     "send": f"/rooms/{job.room_id}/messages"}}


def _message(seq: int, message_id: str, sender_id: str, content: str, created_at: Any, **extra: Any) -> dict[str, Any]:
    return {"message_id": message_id, "seq": seq, "sender_id": sender_id, "content": content,
            "created_at": msgspec.to_builtins(created_at), **extra}


def bot_job(event: RecordedEvent, trigger: Trigger, room: dict[str, Any], context: list[dict[str, Any]]) -> DeliveryJob:
    """The job telling one bot about the message in `event`."""
    sent = event.event
    assert isinstance(sent, MessageSent)
    delivery_id = f"{event.position}:{BOT_TARGET_PREFIX}{quote(trigger.bot_id, safe=_ID_SAFE)}"
    payload: dict[str, Any] = {
        "event": BOT_EVENT,
        "delivery_id": delivery_id,
        "tenant_id": event.tenant_id,
        "bot_id": trigger.bot_id,
        "trigger": trigger.reason,
        "room": room,
        "message": _message(event.seq, sent.message_id, sent.sender_id, sent.content, event.created_at,
                            meta=sent.meta, thread_id=sent.thread_id, type=sent.message_type,
                            attachments=msgspec.to_builtins(sent.attachments)),
        "context": context,
    }
    return DeliveryJob(
        delivery_id=delivery_id, tenant_id=event.tenant_id, webhook_id=BOT_TARGET_PREFIX + trigger.bot_id,
        kind="notification", event=BOT_EVENT, user_id=trigger.bot_id, created_at=event.created_at,
        payload=payload, room_id=event.stream_id, message_id=sent.message_id, topic=BOT_EVENT,
        correlation_id=event.metadata.correlation_id,
    )


class BotJobs:
    """The bot.triggered jobs of committed messages, with each tenant's bots cached for a moment."""

    def __init__(self, db: Queryable, *, context_messages: int) -> None:
        self._db = db
        self._context = context_messages
        self._bots: TtlCache[str, list[tuple[str, list[str] | None]]] = TtlCache(self._load, ttl=BOTS_CACHE_SECONDS)

    async def has_bots(self, tenant_id: str) -> bool:
        """Whether the tenant has any active bot (most have none: their messages need no look-up)."""
        return any(triggers is not None for _, triggers in await self._bots.get(tenant_id))

    async def jobs_for(self, event: RecordedEvent, sent: MessageSent) -> list[DeliveryJob]:
        """One job per bot the message triggers."""
        users = await self._bots.get(event.tenant_id)
        active = {user_id: triggers for user_id, triggers in users if triggers is not None}
        if not active:
            return []
        room = await fetch_room(self._db, event.tenant_id, event.stream_id)
        if room is None:
            return []
        members = {r["user_id"] for r in await list_members(self._db, event.tenant_id, event.stream_id)}
        # The message's `mentions` field, and text @mentions either way.
        found = triggered(sender_id=sent.sender_id, content=sent.content, mentions=sent.mentions,
                          room_type=room["type"], member_ids=members, bots=active,
                          bot_users={user_id for user_id, _ in users})
        if not found:
            return []
        about = {"room_id": room["room_id"], "type": room["type"], "name": room["name"]}
        context = await self._context_before(event.stream_id, event.seq)
        return [bot_job(event, trigger, about, context) for trigger in found]

    async def _context_before(self, room_id: str, seq: int) -> list[dict[str, Any]]:
        if self._context == 0:
            return []
        rows = await page_of_messages(self._db, room_id, after_seq=None, before_seq=seq, limit=self._context)
        return [_message(r["seq"], r["message_id"], r["sender_id"], r["content"], r["created_at"],
                         thread_id=r["thread_id"])
                for r in rows if r["deleted_at"] is None]

    async def _load(self, tenant_id: str) -> list[tuple[str, list[str] | None]]:
        rows = await bot_users(self._db, tenant_id)
        return [(r["user_id"], list(r["triggers"]) if r["triggers"] is not None else None) for r in rows]
