"""Support webhooks (seed 001): support.session_started, support.session_ended, support.escalation (of a session
or a ticket), support.ticket_created, support.ticket_updated and support.sla_breach (an `sla.breached` event of
a stream published under `rl.<tenant>.support.*`).

A support session's events arrive on the delivery producer's consumer like room messages; each of these
becomes one job per tenant webhook subscribed to its webhook event, delivered by the same signed,
retried, dead-lettered sender (a dead letter is listed among the failed notifications, with the webhook
event as its topic). The delivery id is `<position>:<webhook_id>`, so a redelivered event queues nothing new.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.delivery import DeliveryJob
from schemas.events import (
    Event,
    RecordedEvent,
    SlaBreached,
    SupportSessionCreated,
    SupportSessionEnded,
    SupportSessionEscalated,
    SupportTicketCreated,
    SupportTicketEscalated,
    SupportTicketUpdated,
)
from service.consumers.webhooks import Target

SUPPORT_KEY = "support.*"  # the targets cache's key for "subscribed to any support event"
SUPPORT_WEBHOOK_EVENTS = ("support.session_started", "support.session_ended", "support.escalation",
                          "support.ticket_created", "support.ticket_updated",
                          "support.sla_breach")


def webhook_event_of(event: Event) -> str | None:
    """The support webhook event a session event calls for, if any."""
    if isinstance(event, SupportSessionCreated):
        return "support.session_started"
    if isinstance(event, SupportSessionEnded):
        return "support.session_ended"
    if isinstance(event, SupportSessionEscalated | SupportTicketEscalated):
        return "support.escalation"
    if isinstance(event, SupportTicketCreated):
        return "support.ticket_created"
    if isinstance(event, SupportTicketUpdated):
        return "support.ticket_updated"
    if isinstance(event, SlaBreached):
        return "support.sla_breach"
    return None


def _details(event: Event) -> dict[str, Any]:
    if isinstance(event, SupportTicketCreated):
        return {"number": event.display_number, "subject": event.subject,
                "customer_id": event.customer_id, "priority": event.priority, "category": event.category,
                "tags": event.tags, "session_id": event.session_id, "by": event.created_by}
    if isinstance(event, SupportTicketUpdated):
        return {"changed": event.changed, "status": event.status, "priority": event.priority,
                "assigned_to": event.assigned_to, "tags": event.tags, "category": event.category,
                "reason": event.reason, "by": event.by}
    if isinstance(event, SupportTicketEscalated):  # its notes are internal: never sent
        return {"escalation_type": event.escalation_type, "priority": event.priority, "reason": event.reason,
                "by": event.by}
    if isinstance(event, SupportSessionCreated):
        return {"room_id": event.room_id, "customer_id": event.customer_id, "channel": event.channel,
                "priority": event.priority, "team_id": event.team_id}
    if isinstance(event, SupportSessionEnded):
        return {"resolution": event.resolution, "status": event.status, "tags": event.tags, "by": event.by}
    if isinstance(event, SlaBreached):
        return {"clock_id": event.clock_id, "metric": event.metric, "due_at": msgspec.to_builtins(event.due_at),
                "breached_at": msgspec.to_builtins(event.breached_at)}
    assert isinstance(event, SupportSessionEscalated)
    return {"level": event.level, "priority": event.priority, "urgency": event.urgency, "team_id": event.team_id,
            "by": event.by}


def support_job(event: RecordedEvent, target: Target, webhook_event: str) -> DeliveryJob:
    """The job telling `target` about one support session event (internal notes never included)."""
    delivery_id = f"{event.position}:{target.webhook_id}"
    payload: dict[str, Any] = {
        "event": webhook_event,
        "delivery_id": delivery_id,
        "tenant_id": event.tenant_id,
        # A breach names the stream its clock is on; ticket events their ticket; everything else a session.
        ("subject_id" if isinstance(event.event, SlaBreached)
         else "ticket_id" if event.stream_id.startswith("tkt_") else "session_id"): event.stream_id,
        "seq": event.seq,
        "created_at": msgspec.to_builtins(event.created_at),
        **_details(event.event),
    }
    return DeliveryJob(
        delivery_id=delivery_id, tenant_id=event.tenant_id, webhook_id=target.webhook_id, kind="notification",
        event=webhook_event, user_id="", created_at=event.created_at, payload=payload, topic=webhook_event,
    )
