"""What every room command loads first: the domain's view of the caller, and the caller's membership."""

from __future__ import annotations

from starlette.requests import Request

from projections.guards import MemberOf, current_membership_error
from service.domain.rooms import Actor
from service.identity.auth import Principal
from service.web.request import runtime_of


def actor_of(principal: Principal) -> Actor:
    """The domain's view of the caller."""
    return Actor(user_id=principal.user_id, role=principal.role)


async def require_member(request: Request, principal: Principal, room_id: str) -> None:
    """404 when the room is not the tenant's, 403 when the caller is not an active member."""
    error = await current_membership_error(runtime_of(request).pool,
                                           MemberOf(principal.tenant_id, room_id, principal.user_id))
    if error is not None:
        raise error
