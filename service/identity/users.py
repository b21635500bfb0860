"""A tenant's users and their blocks: who may see and grant what, and the queries behind /users and /blocks.

Identity rows live in the `users` table (erasable, never in the log); blocks are events in the blocking
user's own stream, read back through the `blocks` projection.
"""

from __future__ import annotations

import asyncio
import re

import asyncpg
from argon2 import PasswordHasher

from eventstore.types import Queryable
from schemas.errors import NotFound
from schemas.events import Event, UserBlocked, UserUnblocked
from schemas.users import CannotBlockSelf, CreateUser, EmailTaken, LastAdmin, UpdateUser, User, UserExists, UserNotFound
from service.identity.auth import Principal
from service.identity.ids import new_id

_RANK = {"customer": -1, "member": 0, "agent": 1, "admin": 2, "platform": 3}
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()./-]*[0-9]{3}[0-9 ()./-]*$")
# The OWASP-recommended argon2id parameters, as used for signed-up accounts.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

_COLUMNS = "user_id, display_name, email, phone, avatar_url, role, created_at"


def may_grant(granter_role: str, role: str) -> bool:
    """Whether a caller with `granter_role` may hand out `role` (to a user or an API key): never above their own."""
    return _RANK[role] <= _RANK[granter_role]


def sees_all_contacts(viewer: Principal) -> bool:
    """Whether `viewer` may see (and search by fragments of) every user's email and phone: tenant admins."""
    return viewer.role in ("admin", "platform")


def sees_contacts(viewer: Principal, user_id: str) -> bool:
    """Whether `viewer` may see the email and phone of `user_id`: tenant admins, and everyone for themselves."""
    return sees_all_contacts(viewer) or viewer.user_id == user_id


def user_view(row: asyncpg.Record, viewer: Principal) -> User:
    """The API view of a users row as `viewer` may see it."""
    contacts = sees_contacts(viewer, row["user_id"])
    return User(
        user_id=row["user_id"],
        display_name=row["display_name"],
        email=row["email"] if contacts else None,
        phone=row["phone"] if contacts else None,
        avatar_url=row["avatar_url"],
        role=row["role"],
        created_at=row["created_at"],
    )


def decide_block(user_id: str, target: str, *, blocked: bool) -> list[Event]:
    """Events for `user_id` blocking `target`: none when already blocked; blocking oneself is a 400."""
    if target == user_id:
        raise CannotBlockSelf("you cannot block yourself", field="user_id")
    return [] if blocked else [UserBlocked(user_id=target)]


def decide_unblock(target: str, *, blocked: bool) -> list[Event]:
    """Events for lifting a block of `target`: none when there is no block."""
    return [UserUnblocked(user_id=target)] if blocked else []


async def hash_password(password: str) -> str:
    """An argon2id hash of the password, computed off the event loop (it takes tens of milliseconds)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def list_users(conn: Queryable, tenant_id: str, *, limit: int, offset: int) -> list[asyncpg.Record]:
    """The tenant's users ordered by user id."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY user_id LIMIT $2 OFFSET $3",
        tenant_id, limit, offset,
    )


async def search_users(
    conn: Queryable, tenant_id: str, q: str, *, contacts: bool, limit: int
) -> list[asyncpg.Record]:
    """Users whose id or name contains `q` (case-insensitive), or whose email or phone matches it.

    With `contacts` (a tenant admin) email and phone match as substrings; otherwise only exactly, so a
    member can find a colleague whose address they know but cannot harvest addresses by fragments.
    Phones compare by their digits. Prefix matches of the name or id come first.
    """
    needle = q.lower()
    digits = re.sub(r"\D", "", q) if _PHONE_LIKE.match(q) else ""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM users WHERE tenant_id = $1 AND ("
        " strpos(lower(user_id), $2) > 0 OR strpos(lower(display_name), $2) > 0"
        " OR CASE WHEN $3 THEN strpos(lower(coalesce(email, '')), $2) > 0"
        "   OR ($4 <> '' AND strpos(regexp_replace(coalesce(phone, ''), '\\D', '', 'g'), $4) > 0)"
        "  ELSE lower(email) = $2 OR ($4 <> '' AND regexp_replace(coalesce(phone, ''), '\\D', '', 'g') = $4) END)"
        " ORDER BY (strpos(lower(display_name), $2) = 1 OR strpos(lower(user_id), $2) = 1) DESC,"
        " lower(display_name), user_id LIMIT $5",
        tenant_id, needle, contacts, digits, limit,
    )


async def fetch_user(conn: Queryable, tenant_id: str, user_id: str) -> asyncpg.Record | None:
    """One user of the tenant, or None."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE tenant_id = $1 AND user_id = $2",
                               tenant_id, user_id)


async def create_user(conn: Queryable, tenant_id: str, cmd: CreateUser) -> asyncpg.Record:
    """Insert a user (an id is generated when none is given); 409 for a taken user id or email."""
    password_hash = await hash_password(cmd.password) if cmd.password is not None else None
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (tenant_id, user_id, email, phone, display_name, role, password_hash)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}",
            tenant_id, cmd.user_id or new_id("usr"), cmd.email, cmd.phone, cmd.display_name, cmd.role,
            password_hash,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "users_email":
            # Emails sign in without naming a tenant, so they are unique across all tenants.
            raise EmailTaken("this email is already registered", field="email") from None
        raise UserExists("a user with this id already exists", field="user_id") from None
    except asyncpg.ForeignKeyViolationError:
        raise NotFound("tenant not found") from None
    assert row is not None
    return row


async def update_user(pool: asyncpg.Pool, tenant_id: str, user_id: str, cmd: UpdateUser) -> asyncpg.Record:
    """Change a user's role or display name; the tenant's last admin cannot be demoted (409 LAST_ADMIN)."""
    async with pool.acquire() as conn, conn.transaction():
        demoting = isinstance(cmd.role, str) and cmd.role != "admin"
        # Lock the tenant's admins (in a fixed order) before the target, so two concurrent demotions
        # cannot both pass the check, nor deadlock each other.
        admins = [r["user_id"] for r in await conn.fetch(
            "SELECT user_id FROM users WHERE tenant_id = $1 AND role = 'admin' ORDER BY user_id FOR UPDATE",
            tenant_id,
        )] if demoting else []
        current = await conn.fetchrow(
            "SELECT role FROM users WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE", tenant_id, user_id
        )
        if current is None:
            raise UserNotFound("user not found", field="user_id")
        if demoting and admins == [user_id]:
            raise LastAdmin("the tenant's last admin cannot be demoted; promote another admin first", field="role")
        row = await conn.fetchrow(
            "UPDATE users SET role = coalesce($3, role), display_name = coalesce($4, display_name)"
            f" WHERE tenant_id = $1 AND user_id = $2 RETURNING {_COLUMNS}",
            tenant_id, user_id,
            cmd.role if isinstance(cmd.role, str) else None,
            cmd.display_name if isinstance(cmd.display_name, str) else None,
        )
    assert row is not None
    return row


async def open_sessions(conn: Queryable, tenant_id: str, user_id: str) -> list[str]:
    """The ids of the user's sessions that are not revoked."""
    rows = await conn.fetch(
        "SELECT family_id FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        tenant_id, user_id,
    )
    return [r["family_id"] for r in rows]


async def block_state(conn: Queryable, tenant_id: str, blocker: str, target: str, stream_id: str) -> asyncpg.Record:
    """Whether `blocker` blocks `target` now, and their stream's last seq — read in one snapshot."""
    row = await conn.fetchrow(
        "SELECT coalesce((SELECT last_seq FROM streams WHERE stream_id = $1), 0) AS last_seq,"
        " coalesce((SELECT active FROM blocks WHERE tenant_id = $2 AND blocker_id = $3 AND blocked_id = $4),"
        " false) AS blocked",
        stream_id, tenant_id, blocker, target,
    )
    assert row is not None
    return row
