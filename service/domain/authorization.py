"""Who may do what: one table of actions by roles, consulted by every route and domain rule.

An action is allowed when the caller's tenant role is in `tenant_roles`, or — for actions inside a
room — their role in that room is in `room_roles`. The platform admin passes only `platform` actions
and the tenant-admin ones it is given for operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.errors import Forbidden, NotAMember, NotPlatformAdmin, NotRoomAdmin, NotTenantAdmin, RoomlogError
from schemas.roles import ROOM_ROLES, TENANT_ROLES


@dataclass(frozen=True)
class Rule:
    tenant_roles: frozenset[str]
    room_roles: frozenset[str]
    denied: type[RoomlogError]
    message: str


def _rule(tenant: tuple[str, ...], room: tuple[str, ...], denied: type[RoomlogError], message: str) -> Rule:
    return Rule(frozenset(tenant), frozenset(room), denied, message)


# Customers of the support desk reach their own sessions, their rooms and a WebSocket, nothing else.
_EVERYONE: tuple[str, ...] = TENANT_ROLES
# A bot (service/domain/bots.py) acts only in the rooms it is a member of: reads and writes there, its list of
# rooms, a WebSocket and media; never creating rooms, listing users or anything of the tenant's.
_ANYONE = tuple(role for role in TENANT_ROLES if role not in ("customer", "bot"))
_ADMINS = ("admin", "platform")
_DESK = ("agent", "admin")

Action = Literal[
    "room.create", "rooms.list", "tokens.issue", "room.read", "message.send", "message.edit", "message.delete",
    "message.moderate", "message.react", "ack.send", "room.update",
    "member.add", "member.remove",
    "member.leave", "users.read", "users.manage", "blocks.manage", "api_keys.manage", "webhooks.manage",
    "dead_letters.read", "dead_letters.manage", "tenant.settings", "notifications.send", "subscriptions.manage",
    "messages.search", "rooms.sync", "room.typing", "users.erase", "media.upload", "media.read",
    "support.session.start", "support.session.read", "support.session.message", "support.session.end",
    "support.session.work", "support.session.rate", "support.routing.read", "support.agents.read",
    "support.agents.manage", "support.agent.status", "support.teams.read", "support.teams.manage",
    "support.policy.replay", "support.settings.read", "support.settings.manage",
    "support.kb.read", "support.kb.manage", "support.kb.suggest",
    "support.quick_actions.read", "support.quick_actions.manage", "support.quick_actions.execute",
    "support.credit.read", "bots.manage",
    "room.personalize", "room.join", "room.delete",
    "support.ticket.create", "support.ticket.read", "support.ticket.comment", "support.ticket.work",
    "support.sla.read", "support.sla.manage", "support.analytics.read",
    "presence.set", "presence.read",
]

ACTIONS: dict[Action, Rule] = {
    "room.create": _rule(_ANYONE, (), Forbidden, "you may not create rooms"),
    # The platform admin operates tenants; it has no rooms and no place on a WebSocket.
    "rooms.list": _rule(_EVERYONE, (), Forbidden, "you have no rooms to list"),
    "tokens.issue": _rule(_EVERYONE, (), Forbidden, "you may not open a WebSocket"),
    "messages.search": _rule(_ANYONE, (), Forbidden, "you have no rooms to search"),
    # Sync and long-poll read the caller's own rooms (each one checked for membership), like listing them.
    "rooms.sync": _rule(_EVERYONE, (), Forbidden, "you have no rooms to sync"),
    # Public channels are open to everyone of the tenant (the domain rule refuses private rooms).
    "room.join": _rule(_ANYONE, (), Forbidden, "you may not join rooms"),
    # Reading and writing a room's conversation is for its members only, tenant admins included.
    "room.read": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "message.send": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    # Editing and deleting one's own messages (the sender rule itself is the domain's: NOT_MESSAGE_SENDER).
    "message.edit": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "message.delete": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "message.react": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "room.typing": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "ack.send": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    # The caller's own view of a room they are in: mute, archive.
    "room.personalize": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    "member.leave": _rule((), ROOM_ROLES, NotAMember, "you are not a member of this room"),
    # Moderation: the room's admins, and the tenant's admins in any room of the tenant.
    "room.update": _rule(("admin",), ("admin",), NotRoomAdmin, "only room admins may do this"),
    # Ending a room for everyone (either member of a DM may: the domain rule).
    "room.delete": _rule(("admin",), ("admin",), NotRoomAdmin, "only room admins may delete the room"),
    "member.add": _rule(("admin",), ("admin",), NotRoomAdmin, "only room admins may add members"),
    "member.remove": _rule(("admin",), ("admin",), NotRoomAdmin, "only room admins may remove others"),
    "message.moderate": _rule(("admin",), ("admin",), NotRoomAdmin, "only room admins may delete others' messages"),
    # Anyone of the tenant uploads; reading is narrowed further to the uploader and the rooms it is in.
    # Customers attach files to their support sessions; what anyone may read is the media rule's (uploader or
    # a member of a room where it is attached).
    "media.upload": _rule(_EVERYONE, (), Forbidden, "you may not upload media"),
    "media.read": _rule(_EVERYONE, (), Forbidden, "you may not read media"),
    "users.read": _rule(_ANYONE, (), Forbidden, "you may not list users"),
    "subscriptions.manage": _rule(_ANYONE, (), Forbidden, "you may not subscribe to topics"),
    # Notifications come from the tenant's backend or staff, not from end users to each other.
    "notifications.send": _rule(("agent", "admin"), (), Forbidden, "only agents and admins may send notifications"),
    "blocks.manage": _rule(_ANYONE, (), Forbidden, "you may not block users"),
    # Presence is the tenant's colleagues' business: customers reach their sessions, not the directory.
    "presence.set": _rule(_ANYONE, (), Forbidden, "you may not set a presence status"),
    "presence.read": _rule(_ANYONE, (), Forbidden, "you may not read presence"),
    "users.manage": _rule(_ADMINS, (), NotTenantAdmin, "only tenant admins may manage users"),
    # Erasure destroys content for good: the tenant's own admins decide it, not the platform operator.
    "users.erase": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may erase a user's content"),
    "api_keys.manage": _rule(_ADMINS, (), NotTenantAdmin, "only tenant admins may manage API keys"),
    "webhooks.manage": _rule(_ADMINS, (), NotTenantAdmin, "only tenant admins may manage webhooks"),
    "dead_letters.read": _rule(_ADMINS, (), NotTenantAdmin, "only tenant admins may read dead letters"),
    "dead_letters.manage": _rule(_ADMINS, (), NotTenantAdmin, "only tenant admins may retry or discard"),
    "tenant.settings": _rule(("platform",), (), NotPlatformAdmin, "only the platform admin may change tenants"),
    # The support desk. Customers reach only their own sessions (another's is SESSION_NOT_FOUND: the
    # domain's rule); agents and admins work every session of the tenant.
    "support.session.start": _rule(("customer", *_DESK), (), Forbidden, "you may not start support sessions"),
    "support.session.read": _rule(("customer", *_DESK), (), Forbidden, "you may not read support sessions"),
    "support.session.message": _rule(("customer", *_DESK), (), Forbidden, "you may not write in support sessions"),
    "support.session.end": _rule(("customer", *_DESK), (), Forbidden, "you may not end support sessions"),
    "support.session.work": _rule(_DESK, (), Forbidden, "only agents and admins may work support sessions"),
    "support.session.rate": _rule(("customer",), (), Forbidden, "only the session's customer may rate it"),
    "support.routing.read": _rule(_DESK, (), Forbidden, "only agents and admins may read routing records"),
    "support.agents.read": _rule(_DESK, (), Forbidden, "only agents and admins may read the desk's agents"),
    "support.agents.manage": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may manage agents"),
    "support.agent.status": _rule(_DESK, (), Forbidden, "only agents and admins may set agent status"),
    "support.teams.read": _rule(_DESK, (), Forbidden, "only agents and admins may read teams"),
    "support.teams.manage": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may manage teams"),
    "support.policy.replay": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may replay routing"),
    "support.settings.read": _rule(_DESK, (), Forbidden, "only agents and admins may read the desk's settings"),
    "support.settings.manage": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may change desk settings"),
    # The knowledge base: everyone of the tenant reads it (customers only what is published: the command's
    # rule); the desk writes it and asks it for suggestions.
    "support.kb.read": _rule(_EVERYONE, (), Forbidden, "you may not read the knowledge base"),
    "support.kb.manage": _rule(_DESK, (), Forbidden, "only agents and admins may write knowledge-base articles"),
    "support.kb.suggest": _rule(_DESK, (), Forbidden, "only agents and admins may ask for suggested articles"),
    # Quick actions: the desk lists and runs them (each action narrows who may run it further), tenant admins
    # add the tenant's own. A customer reads its own store credit (the command's rule), the desk anyone's.
    "support.quick_actions.read": _rule(_DESK, (), Forbidden, "only agents and admins may list quick actions"),
    "support.quick_actions.manage": _rule(("admin",), (), NotTenantAdmin,
                                          "only tenant admins may manage quick actions"),
    "support.quick_actions.execute": _rule(_DESK, (), Forbidden, "only agents and admins may run quick actions"),
    "support.credit.read": _rule(("customer", *_DESK), (), Forbidden, "you may not read store credit"),
    # Bots hold a signing secret and an API key of the tenant: its own admins register them.
    "bots.manage": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may manage bots"),
    # Tickets: customers file, read and comment on their own (another's is TICKET_NOT_FOUND: the domain's rule);
    # working a ticket — changing it, internal notes, escalation, tickets from sessions — is the desk's.
    "support.ticket.create": _rule(("customer", *_DESK), (), Forbidden, "you may not file tickets"),
    "support.ticket.read": _rule(("customer", *_DESK), (), Forbidden, "you may not read tickets"),
    "support.ticket.comment": _rule(("customer", *_DESK), (), Forbidden, "you may not comment on tickets"),
    "support.ticket.work": _rule(_DESK, (), Forbidden, "only agents and admins may work tickets"),
    "support.sla.read": _rule(_DESK, (), Forbidden, "only agents and admins may read SLA calendars and policies"),
    "support.sla.manage": _rule(("admin",), (), NotTenantAdmin, "only tenant admins may change SLA calendars and"
                                " policies"),
    # Analytics cover every session and ticket of the tenant: the desk's view, never a customer's.
    "support.analytics.read": _rule(_DESK, (), Forbidden, "only agents and admins may read support analytics"),
}


def allowed(action: Action, tenant_role: str, room_role: str | None = None) -> bool:
    """Whether a caller with these roles may do `action`."""
    rule = ACTIONS[action]
    return tenant_role in rule.tenant_roles or (room_role is not None and room_role in rule.room_roles)


def authorize(action: Action, tenant_role: str, room_role: str | None = None) -> None:
    """Raise the action's 403 error unless `allowed`."""
    if not allowed(action, tenant_role, room_role):
        rule = ACTIONS[action]
        raise rule.denied(rule.message)
