"""The users directory of the caller's tenant, user management for tenant admins, and blocks.

Privacy: everyone in the tenant sees who its users are (id, name, avatar, role), but email and phone
are shown only to tenant admins and to each user for their own entry; other callers get them as null.
Members can still find a colleague by a complete email or phone they already know (see `search_users`).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from projections.blocks import blocked_by_user
from projections.streams import user_stream
from schemas import api
from schemas.errors import (
    CannotBlockSelf,
    EmailTaken,
    Forbidden,
    LastAdmin,
    NotFound,
    NotTenantAdmin,
    RoleTooHigh,
    UserExists,
    UserNotFound,
    ValidationError,
)
from schemas.events import Event
from schemas.roles import TenantRole
from schemas.users import Block, CreateUser, UpdateUser, User
from service.commands.metadata import metadata_for, retry_on_conflict
from service.domain.roles import may_grant
from service.domain.users import decide_block, decide_unblock, sees_all_contacts
from service.identity.auth import Principal
from service.identity.users import (
    block_state,
    create_user,
    fetch_user,
    list_users,
    open_sessions,
    search_users,
    update_user,
    user_view,
)
from service.runtime import Runtime
from service.web.endpoints import Endpoint, Link, Query, TextQuery
from service.web.request import JSON, body_as, caller_may, runtime_of

LIMIT = Query("limit", "most users to return", minimum=1, maximum=100, default=50)
OFFSET = Query("offset", "users to skip", minimum=0, default=0)
SEARCH_LIMIT = Query("limit", "most matches to return", minimum=1, maximum=100, default=20)
MAX_QUERY_CHARS = 100
SEARCH_TERM = TextQuery("q", "part of a user id, name, email or phone", max_length=MAX_QUERY_CHARS)


async def get_users(request: Request) -> Response:
    principal = await caller_may(request, "users.read")
    rows = await list_users(runtime_of(request).pool, principal.tenant_id,
                            limit=LIMIT.require(request), offset=OFFSET.require(request))
    return JSON([user_view(r, principal) for r in rows])


async def search(request: Request) -> Response:
    principal = await caller_may(request, "users.read")
    q = SEARCH_TERM.read(request)
    assert q is not None  # required
    rows = await search_users(runtime_of(request).pool, principal.tenant_id, q,
                              contacts=sees_all_contacts(principal.role), limit=SEARCH_LIMIT.require(request))
    return JSON([user_view(r, principal) for r in rows])


async def post_user(request: Request) -> Response:
    principal = await caller_may(request, "users.manage")
    cmd = await body_as(request, CreateUser)
    _may_grant(principal, cmd.role)
    runtime = runtime_of(request)
    row = await create_user(runtime.pool, principal.tenant_id, cmd, runtime.passwords)
    # A backend may have acted as this id before it was registered: its cached 'member' role is stale now.
    runtime.auth.forget_role(principal.tenant_id, row["user_id"])
    return JSON(user_view(row, principal), status_code=201)


async def patch_user(request: Request) -> Response:
    principal = await caller_may(request, "users.manage")
    user_id = request.path_params["user_id"]
    cmd = await body_as(request, UpdateUser)
    if not api.is_user_id(user_id):
        raise UserNotFound("user not found", field="user_id")
    if isinstance(cmd.role, str):
        _may_grant(principal, cmd.role)
    runtime = runtime_of(request)
    if isinstance(cmd.role, str) or isinstance(cmd.display_name, str):
        row = await update_user(runtime.pool, principal.tenant_id, user_id, cmd)
        await _forget_role(runtime, principal.tenant_id, user_id)
    else:
        found = await fetch_user(runtime.pool, principal.tenant_id, user_id)
        if found is None:
            raise UserNotFound("user not found", field="user_id")
        row = found
    return JSON(user_view(row, principal))


async def block(request: Request) -> Response:
    principal, target = await _block_target(request)
    await _change_block(runtime_of(request), principal, target,
                        lambda blocked: decide_block(principal.user_id, target, blocked=blocked))
    return JSON(api.Success())


async def unblock(request: Request) -> Response:
    principal, target = await _block_target(request)
    await _change_block(runtime_of(request), principal, target,
                        lambda blocked: decide_unblock(target, blocked=blocked))
    return JSON(api.Success())


async def get_blocks(request: Request) -> Response:
    principal = await caller_may(request, "blocks.manage")
    rows = await blocked_by_user(runtime_of(request).pool, principal.tenant_id, principal.user_id)
    return JSON([Block(user_id=r["blocked_id"], since=r["since"]) for r in rows])


def _may_grant(principal: Principal, role: TenantRole) -> None:
    if not may_grant(principal.role, role):
        raise RoleTooHigh(f"you may not grant the role {role}, which is above your own", field="role")


async def _forget_role(runtime: Runtime, tenant_id: str, user_id: str) -> None:
    """Make this instance apply a changed role at once (other instances within the auth cache ttl)."""
    runtime.auth.forget_role(tenant_id, user_id)
    for session_id in await open_sessions(runtime.pool, tenant_id, user_id):
        runtime.auth.sessions.forget(session_id)


async def _block_target(request: Request) -> tuple[Principal, str]:
    principal = await caller_may(request, "blocks.manage")
    target = request.path_params["user_id"]
    if not api.is_user_id(target):
        raise ValidationError(f"user_id must be {api.USER_ID_RULE}", field="user_id")
    return principal, target


async def _change_block(
    runtime: Runtime, principal: Principal, target: str, decide: Callable[[bool], list[Event]]
) -> None:
    """Read the block and the caller's stream seq, decide, append at that seq; again if the stream moved."""
    stream_id = user_stream(principal.tenant_id, principal.user_id)

    async def attempt() -> None:
        state = await block_state(runtime.pool, principal.tenant_id, principal.user_id, target, stream_id)
        events = decide(state["blocked"])
        if events:
            await runtime.appender.append(
                stream_id, events, tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                expected_seq=state["last_seq"], create_stream=True,
            )

    await retry_on_conflict(attempt)


ENDPOINTS = [
    Endpoint("GET", "/users", get_users, "The caller's tenant's users (email and phone for admins and oneself)",
             response=list[User], query=(LIMIT, OFFSET), errors=(Forbidden,)),
    Endpoint("GET", "/users/search", search, "Find users by id, name, email or phone (query parameter q, 1-100 chars)",
             response=list[User], query=(SEARCH_TERM, SEARCH_LIMIT), errors=(Forbidden,)),
    Endpoint("POST", "/users", post_user, "Create or invite a user of the tenant (tenant admins)",
             body=CreateUser, response=User, status=201,
             errors=(NotTenantAdmin, RoleTooHigh, UserExists, EmailTaken, NotFound),
             links=(Link("PATCH", "/users/{user_id}"), Link("POST", "/users/{user_id}/block"))),
    Endpoint("PATCH", "/users/{user_id}", patch_user, "Change a user's role or display name (tenant admins)",
             body=UpdateUser, response=User, errors=(NotTenantAdmin, RoleTooHigh, UserNotFound, LastAdmin)),
    Endpoint("POST", "/users/{user_id}/block", block,
             "Block a user: they can no longer open a DM with you or add you to rooms",
             response=api.Success, errors=(CannotBlockSelf, Forbidden)),
    Endpoint("DELETE", "/users/{user_id}/block", unblock, "Lift a block (idempotent)",
             response=api.Success, errors=(Forbidden,)),
    Endpoint("GET", "/blocks", get_blocks, "The users the caller has blocked, most recent first",
             response=list[Block], errors=(Forbidden,)),
]
