"""Bots: registration bodies and answers (a bot is a user with the role `bot` that gets `bot.triggered` deliveries)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.api import UserId
from schemas.users import DisplayName
from schemas.webhooks import WebhookSecret, WebhookUrl

BotTrigger = Literal["mention", "dm", "all_messages"]
# A subject of the cluster's NATS the bot listens on: plain tokens, never one of roomlog's own prefixes.
NatsSubject = Annotated[str, msgspec.Meta(
    min_length=1, max_length=200, pattern=r"^(?!rl[a-z]?\.|_INBOX\.|\$)[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,15}$",
)]


class BotDelivery(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Either `{webhook_url, secret}` (signed HTTP calls) or `{nats_subject}` (a bot inside the cluster)."""

    webhook_url: WebhookUrl | None = None
    secret: WebhookSecret | None = None
    nats_subject: NatsSubject | None = None


Triggers = Annotated[list[BotTrigger], msgspec.Meta(min_length=1, max_length=3)]


class CreateBot(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UserId
    display_name: DisplayName
    delivery: BotDelivery
    triggers: Triggers


class UpdateBot(msgspec.Struct, forbid_unknown_fields=True):
    display_name: DisplayName | UnsetType = UNSET
    delivery: BotDelivery | UnsetType = UNSET
    triggers: Triggers | UnsetType = UNSET


class BotDeliveryView(msgspec.Struct, omit_defaults=True):
    """Where a bot's deliveries go (never the secret)."""

    webhook_url: str | None = None
    nats_subject: str | None = None


class Bot(msgspec.Struct):
    bot_id: str
    user_id: str
    display_name: str
    delivery: BotDeliveryView
    triggers: list[str]
    created_at: datetime
    updated_at: datetime


class CreatedBot(msgspec.Struct):
    """The answer to POST /bots: the only response that shows the bot's API key."""

    bot_id: str
    user_id: str
    display_name: str
    delivery: BotDeliveryView
    triggers: list[str]
    created_at: datetime
    updated_at: datetime
    api_key: str
    key_id: str
    secret: str | None = None  # the signing secret, when it was generated (not given)
