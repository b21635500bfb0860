"""Delivery jobs: one webhook call to make, as queued in the DELIVERIES work-queue stream."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec


class DeliveryJob(msgspec.Struct, kw_only=True):
    """`delivery_id` is stable across retries: receivers use it to drop repeats."""

    delivery_id: str
    tenant_id: str
    webhook_id: str
    kind: Literal["message", "notification"]
    event: str  # the webhook event name, e.g. "message.offline", "notification"
    user_id: str
    created_at: datetime
    payload: dict[str, Any]
    room_id: str | None = None
    message_id: str | None = None
    notification_id: str | None = None
    topic: str | None = None
    # The correlation id of the event the job is about (the request id of the call that appended it).
    correlation_id: str | None = None
