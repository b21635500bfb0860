"""Notifications (POST /notify) and topic subscriptions: events in the log, delivered like room events."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from projections.rooms import fetch_room
from projections.streams import notifications_stream, user_stream
from projections.subscriptions import is_subscribed, topics_of
from schemas import api
from schemas.errors import Forbidden, NotFound, RoomNotFound
from schemas.events import NotificationSent, SubscriptionAdded, SubscriptionRemoved
from schemas.notifications import NotificationCreated, Notify, Subscribe, Subscription, Topic
from service.commands.metadata import metadata_for
from service.identity.auth import Principal
from service.identity.ids import new_id
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller_may, runtime_of


async def notify(request: Request) -> Response:
    principal = await caller_may(request, "notifications.send")
    cmd = await body_as(request, Notify)
    targets = cmd.targets
    runtime = runtime_of(request)
    if targets.room_id and await fetch_room(runtime.pool, principal.tenant_id, targets.room_id) is None:
        raise RoomNotFound("room not found", field="targets.room_id")
    event = NotificationSent(
        notification_id=new_id("notif"), topic=cmd.topic, payload=cmd.payload, user_ids=list(targets.user_ids),
        room_id=targets.room_id, topic_subscribers=targets.topic_subscribers,
    )
    result = await runtime.appender.append(
        notifications_stream(principal.tenant_id), [event], tenant_id=principal.tenant_id,
        metadata=metadata_for(principal), create_stream=True,
    )
    return JSON(NotificationCreated(notification_id=event.notification_id, created_at=result.events[0].created_at),
                status_code=201)


async def subscribe(request: Request) -> Response:
    principal = await caller_may(request, "subscriptions.manage")
    cmd = await body_as(request, Subscribe)
    await _change_subscription(request, principal, cmd.topic, subscribed=True)
    return JSON(api.Success(), status_code=201)


async def unsubscribe(request: Request) -> Response:
    principal = await caller_may(request, "subscriptions.manage")
    topic = request.path_params["topic"]
    if not await is_subscribed(runtime_of(request).pool, principal.tenant_id, principal.user_id, topic):
        raise NotFound("not subscribed to this topic", field="topic")
    await _change_subscription(request, principal, topic, subscribed=False)
    return JSON(api.Success())


async def list_subscriptions(request: Request) -> Response:
    principal = await caller_may(request, "subscriptions.manage")
    rows = await topics_of(runtime_of(request).pool, principal.tenant_id, principal.user_id)
    return JSON([Subscription(topic=r["topic"], since=r["since"]) for r in rows])


async def _change_subscription(request: Request, principal: Principal, topic: Topic, *, subscribed: bool) -> None:
    runtime = runtime_of(request)
    # Subscribing twice appends nothing: the read model already says so.
    if await is_subscribed(runtime.pool, principal.tenant_id, principal.user_id, topic) == subscribed:
        return
    event = SubscriptionAdded(topic=topic) if subscribed else SubscriptionRemoved(topic=topic)
    await runtime.appender.append(
        user_stream(principal.tenant_id, principal.user_id), [event], tenant_id=principal.tenant_id,
        metadata=metadata_for(principal), create_stream=True,
    )


ENDPOINTS = [
    Endpoint("POST", "/notify", notify, "Notify users, a room's members and/or a topic's subscribers",
             body=Notify, response=NotificationCreated, status=201, errors=(RoomNotFound, Forbidden)),
    Endpoint("POST", "/subscriptions", subscribe, "Subscribe the caller to a topic", body=Subscribe,
             response=api.Success, status=201, errors=(Forbidden,),
             links=(Link("DELETE", "/subscriptions/{topic}", {"topic": "$request.body#/topic"}),)),
    Endpoint("GET", "/subscriptions", list_subscriptions, "The caller's topic subscriptions",
             response=list[Subscription], errors=(Forbidden,)),
    Endpoint("DELETE", "/subscriptions/{topic}", unsubscribe, "Unsubscribe the caller from a topic",
             response=api.Success, errors=(NotFound, Forbidden)),
]
