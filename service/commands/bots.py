"""Bot registration: each change is an event of the bot's own stream, appended at the seq it was read at.

A bot is also a user with the role `bot` (its messages carry `sender_id` = the bot) and an API key bound
to that user id; the key is created with the registration and revoked with its deletion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from msgspec import UNSET

from projections.bots import fetch_bot
from projections.streams import bot_stream
from schemas.bots import Bot, BotDelivery, BotDeliveryView, CreateBot, CreatedBot, UpdateBot
from schemas.errors import BotExists, BotNotFound, ValidationError, WrongExpectedSeq
from schemas.events import BotDeleted, BotRegistered, BotUpdated
from service.commands.metadata import metadata_for, retry_on_conflict
from service.consumers.bot_secrets import forget_secret, forget_secrets, store_secret
from service.consumers.egress import check_url
from service.consumers.webhooks import new_secret
from service.domain.authorization import authorize
from service.identity.api_keys import create_key, revoke_key
from service.identity.auth import Principal

if TYPE_CHECKING:
    from service.runtime import Runtime


def bot_view(row: asyncpg.Record) -> Bot:
    """The API view of a bots row (never the secret)."""
    return Bot(bot_id=row["bot_id"], user_id=row["bot_id"], display_name=row["display_name"],
               delivery=BotDeliveryView(webhook_url=row["webhook_url"], nats_subject=row["nats_subject"]),
               triggers=list(row["triggers"]), created_at=row["created_at"], updated_at=row["updated_at"])


async def _checked_delivery(runtime: Runtime, delivery: BotDelivery) -> BotDelivery:
    """The delivery, checked: 400 unless it names exactly one way, or its webhook URL may not be called."""
    if (delivery.webhook_url is None) == (delivery.nats_subject is None):
        raise ValidationError("delivery takes either webhook_url (with an optional secret) or nats_subject",
                              field="delivery")
    if delivery.nats_subject is not None:
        if delivery.secret is not None:
            raise ValidationError("a secret signs webhook calls only", field="delivery")
        return delivery
    assert delivery.webhook_url is not None
    await check_url(delivery.webhook_url, runtime.resolver, allow_private=runtime.settings.webhook_allow_private,
                    field="delivery")
    return delivery


async def _bot_user(runtime: Runtime, tenant_id: str, bot_id: str, display_name: str) -> None:
    """The bot's user row, with the role `bot`; 409 when the id is a user who is not a bot."""
    role = await runtime.pool.fetchval(
        "INSERT INTO users (tenant_id, user_id, display_name, role) VALUES ($1, $2, $3, 'bot')"
        " ON CONFLICT (tenant_id, user_id) DO UPDATE SET display_name = EXCLUDED.display_name"
        "   WHERE users.role = 'bot'"
        " RETURNING role",
        tenant_id, bot_id, display_name,
    )
    if role is None:
        raise BotExists("a user who is not a bot has this id", field="user_id")
    runtime.auth.forget_role(tenant_id, bot_id)


async def register(runtime: Runtime, principal: Principal, cmd: CreateBot) -> CreatedBot:
    """Register a bot (or register a deleted one again); the API key (and a generated secret) are shown once."""
    authorize("bots.manage", principal.role)
    tenant_id, bot_id = principal.tenant_id, cmd.user_id
    existing = await fetch_bot(runtime.pool, tenant_id, bot_id)
    if existing is not None and existing["deleted_at"] is None:
        raise BotExists("a bot with this id is registered", field="user_id")
    delivery = await _checked_delivery(runtime, cmd.delivery)
    await _bot_user(runtime, tenant_id, bot_id, cmd.display_name)
    key = await create_key(runtime.pool, tenant_id, name=f"bot {bot_id}", role="bot", user_id=bot_id)
    generated = new_secret() if delivery.webhook_url is not None and delivery.secret is None else None
    secret = delivery.secret or generated
    secret_id = await store_secret(runtime.pool, tenant_id, bot_id, secret) if secret is not None else None
    event = BotRegistered(bot_id=bot_id, display_name=cmd.display_name, triggers=sorted(set(cmd.triggers)),
                          by=principal.user_id, webhook_url=delivery.webhook_url, secret_id=secret_id,
                          nats_subject=delivery.nats_subject, key_id=key.key_id)
    seq = 0 if existing is None else existing["updated_seq"]
    try:
        result = await runtime.appender.append(bot_stream(tenant_id, bot_id), [event], tenant_id=tenant_id,
                                               metadata=metadata_for(principal), expected_seq=seq,
                                               create_stream=seq == 0)
    except WrongExpectedSeq:  # registered by a concurrent request: this one's key and secret must not stay
        await revoke_key(runtime.pool, key.key_id, tenant_id=tenant_id)
        if secret_id is not None:
            await forget_secret(runtime.pool, tenant_id, secret_id)
        raise BotExists("a bot with this id is registered", field="user_id") from None
    await forget_secrets(runtime.pool, tenant_id, bot_id, keep=secret_id, before=result.events[0].created_at)
    runtime.auth.active_bots.forget((tenant_id, bot_id))
    row = await fetch_bot(runtime.pool, tenant_id, bot_id)
    assert row is not None
    view = bot_view(row)
    return CreatedBot(bot_id=bot_id, user_id=bot_id, display_name=view.display_name, delivery=view.delivery,
                      triggers=view.triggers, created_at=view.created_at, updated_at=view.updated_at,
                      api_key=key.api_key, key_id=key.key_id, secret=generated)


async def require_bot(runtime: Runtime, principal: Principal, bot_id: str) -> asyncpg.Record:
    """A registered bot of the caller's tenant (tenant admins only); 404 otherwise."""
    authorize("bots.manage", principal.role)
    row = await fetch_bot(runtime.pool, principal.tenant_id, bot_id)
    if row is None or row["deleted_at"] is not None:
        raise BotNotFound("bot not found", field="bot_id")
    return row


async def update(runtime: Runtime, principal: Principal, bot_id: str, cmd: UpdateBot) -> asyncpg.Record:
    """Change a bot's name, delivery or triggers (a `bot.updated` event with the whole new configuration)."""
    tenant_id = principal.tenant_id

    async def attempt() -> asyncpg.Record:
        row = await require_bot(runtime, principal, bot_id)
        delivery = BotDelivery(webhook_url=row["webhook_url"], nats_subject=row["nats_subject"])
        secret_id, stored = row["secret_id"], False
        if cmd.delivery is not UNSET:
            delivery = await _checked_delivery(runtime, cmd.delivery)
            if delivery.nats_subject is not None:
                secret_id = None
            elif delivery.secret is not None or secret_id is None:  # a new secret, or the first one it needs
                secret_id = await store_secret(runtime.pool, tenant_id, bot_id, delivery.secret or new_secret())
                stored = True
        name = row["display_name"] if cmd.display_name is UNSET else cmd.display_name
        triggers = list(row["triggers"]) if cmd.triggers is UNSET else sorted(set(cmd.triggers))
        event = BotUpdated(bot_id=bot_id, display_name=name, triggers=triggers, by=principal.user_id,
                           webhook_url=delivery.webhook_url, secret_id=secret_id,
                           nats_subject=delivery.nats_subject)
        try:
            result = await runtime.appender.append(bot_stream(tenant_id, bot_id), [event], tenant_id=tenant_id,
                                                   metadata=metadata_for(principal), expected_seq=row["updated_seq"])
        except WrongExpectedSeq:
            if stored and secret_id is not None:
                await forget_secret(runtime.pool, tenant_id, secret_id)
            raise
        await forget_secrets(runtime.pool, tenant_id, bot_id, keep=secret_id, before=result.events[0].created_at)
        if name != row["display_name"]:
            await _bot_user(runtime, tenant_id, bot_id, name)
        return await require_bot(runtime, principal, bot_id)

    return await retry_on_conflict(attempt)


async def delete(runtime: Runtime, principal: Principal, bot_id: str) -> None:
    """Delete a bot: no more deliveries, its key and reply tokens stop working; its user and messages stay."""
    row = await require_bot(runtime, principal, bot_id)
    try:
        result = await runtime.appender.append(bot_stream(principal.tenant_id, bot_id),
                                               [BotDeleted(bot_id=bot_id, by=principal.user_id)],
                                               tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                                               expected_seq=row["updated_seq"])
    except WrongExpectedSeq:  # deleted (or changed) meanwhile: answer as if it was not there
        raise BotNotFound("bot not found", field="bot_id") from None
    await forget_secrets(runtime.pool, principal.tenant_id, bot_id, keep=None, before=result.events[0].created_at)
    digest = await revoke_key(runtime.pool, row["key_id"], tenant_id=principal.tenant_id)
    if digest is not None:
        runtime.auth.api_keys.forget(digest)
    runtime.auth.active_bots.forget((principal.tenant_id, bot_id))
