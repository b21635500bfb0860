"""Who is calling: an end user's JWT (`Authorization: Bearer`), or a tenant backend's API key plus `X-User-Id`.

Answers about keys and sessions are cached for a few seconds per instance, so authentication costs no
query on the hot path while a revoked key, a revoked session or a changed role still takes effect
everywhere within `AUTH_CACHE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import asyncpg
from starlette.datastructures import Headers

from schemas.api import USER_ID_RULE, is_user_id
from schemas.errors import AuthenticationError
from schemas.roles import Role, TenantRole, is_tenant_role
from service.domain.roles import lesser_role
from service.identity.api_keys import hash_key
from service.identity.tokens import TokenSigner

AUTH_CACHE_SECONDS = 5.0
# A tenant's users with a role other than `member` are loaded as one map (one query per tenant and ttl, not one per
# user acting through a key); a tenant with more of them than this has its users' roles looked up one by one.
ROLE_MAP_MAX = 1_000

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    user_id: str
    role: Role = "admin"
    via: Literal["api_key", "jwt", "platform", "bot_token"] = "api_key"
    session_id: str | None = None


class TtlCache(Generic[K, V]):
    """Answers of `load` kept for `ttl` seconds (misses too), so repeated look-ups cost no query.

    Concurrent look-ups of a key that is absent or stale share one load: under load every sender's entry
    goes stale while dozens of its requests are in flight, and each would otherwise run the same query.
    """

    def __init__(self, load: Callable[[K], Awaitable[V]], *, ttl: float = AUTH_CACHE_SECONDS,
                 max_entries: int = 10_000) -> None:
        self._load = load
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        """The cached answer for key, loading it when absent or stale."""
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        loading = self._loading.get(key)
        if loading is not None:
            try:
                return await asyncio.shield(loading)
            except asyncio.CancelledError:
                if not loading.cancelled():  # this look-up itself was cancelled
                    raise
                # the look-up that was loading was cancelled: load here instead
        return await self._lead(key, now)

    async def _lead(self, key: K, now: float) -> V:
        loading = self._loading[key] = asyncio.get_running_loop().create_future()
        try:
            value = await self._load(key)
        except asyncio.CancelledError:
            loading.cancel()
            raise
        except Exception as exc:
            loading.set_exception(exc)
            loading.exception()  # marked retrieved: whoever waits on it raises it, nobody else need
            raise
        finally:
            forgotten = self._loading.get(key) is not loading  # forget() ran meanwhile: this answer may predate it
            if not forgotten:
                del self._loading[key]
        if not forgotten:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (value, now + self._ttl)
        loading.set_result(value)
        return value

    def forget(self, key: K) -> None:
        """Drop one answer (this instance learns of a change at once; others within the ttl)."""
        self._entries.pop(key, None)
        self._loading.pop(key, None)  # a load already running may predate the change: later look-ups reload


class Authenticator:
    """Turns request headers into a Principal; raises AuthenticationError (401) otherwise."""

    def __init__(self, pool: asyncpg.Pool, signer: TokenSigner, *, platform_admin_key: str | None = None,
                 role_map_max: int = ROLE_MAP_MAX) -> None:
        self.signer = signer
        self._pool = pool
        self._role_map_max = role_map_max
        self._platform_digest = hash_key(platform_admin_key) if platform_admin_key else None
        self.api_keys: TtlCache[bytes, asyncpg.Record | None] = TtlCache(self._load_key)
        self.sessions: TtlCache[str, asyncpg.Record | None] = TtlCache(self._load_session)
        self.tenant_roles: TtlCache[str, dict[str, TenantRole] | None] = TtlCache(self._load_tenant_roles)
        self.user_roles: TtlCache[tuple[str, str], TenantRole | None] = TtlCache(self._load_user_role)
        self.active_bots: TtlCache[tuple[str, str], bool] = TtlCache(self._load_active_bot)

    async def authenticate(self, headers: Headers) -> Principal:
        """The caller behind these headers."""
        authorization = headers.get("authorization")
        if authorization:
            return await self._bearer(authorization)
        api_key = headers.get("x-api-key")
        if not api_key:
            raise AuthenticationError("missing credentials: send Authorization: Bearer <token> or X-API-Key")
        if len(api_key) > 200:
            raise AuthenticationError("Invalid API key")
        digest = hash_key(api_key)
        if self._platform_digest is not None and hmac.compare_digest(digest, self._platform_digest):
            user_id = user_id_header(headers) if "x-user-id" in headers else "platform"
            return Principal(tenant_id=headers.get("x-tenant-id", ""), user_id=user_id, role="platform", via="platform")
        key = await self.api_keys.get(digest)
        if key is None:
            raise AuthenticationError("Invalid API key")
        user_id = self._key_user(key, headers)
        # The backend acts for a user: the user's tenant role applies (unregistered users are members),
        # capped by the key's own role.
        user_role = await self._role_of(key["tenant_id"], user_id)
        return Principal(tenant_id=key["tenant_id"], user_id=user_id, role=lesser_role(key["role"], user_role))

    async def _bearer(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Authorization must be 'Bearer <token>'")
        token = token.strip()
        if self.signer.kind_of(token) == "bot":
            return await self._bot_token(token)
        claims = self.signer.verify(token, token_type="access")
        session = await self.sessions.get(claims.session_id or "")
        if session is None or session["revoked_at"] is not None or session["tenant_id"] != claims.tenant_id:
            raise AuthenticationError("session ended; log in again")
        return Principal(tenant_id=claims.tenant_id, user_id=claims.user_id, role=session["role"], via="jwt",
                         session_id=claims.session_id)

    async def _bot_token(self, token: str) -> Principal:
        # A bot's reply token (see service/consumers/bots.py): no session behind it, so the bot must still be
        # registered; a deleted bot's tokens stop working within the cache ttl.
        claims = self.signer.verify(token, token_type="bot")
        if not await self.active_bots.get((claims.tenant_id, claims.user_id)):
            raise AuthenticationError("the bot was deleted")
        return Principal(tenant_id=claims.tenant_id, user_id=claims.user_id, role="bot", via="bot_token")

    @staticmethod
    def _key_user(key: asyncpg.Record, headers: Headers) -> str:
        # A bot's key acts for its bot alone: X-User-Id may be left out, and naming anyone else is refused.
        bound = key["user_id"]
        if bound is None:
            return user_id_header(headers)
        if "x-user-id" in headers and user_id_header(headers) != bound:
            raise AuthenticationError("this API key acts only for its own user")
        return str(bound)

    async def session_active(self, tenant_id: str, session_id: str) -> bool:
        """Whether the session exists in this tenant and is not revoked (cached like bearer checks)."""
        session = await self.sessions.get(session_id)
        return session is not None and session["revoked_at"] is None and session["tenant_id"] == tenant_id

    def forget_role(self, tenant_id: str, user_id: str) -> None:
        """Drop what this instance knows of the user's role (it applies a change at once; others within the ttl)."""
        self.tenant_roles.forget(tenant_id)
        self.user_roles.forget((tenant_id, user_id))

    async def _role_of(self, tenant_id: str, user_id: str) -> TenantRole:
        # Unregistered users are members.
        roles = await self.tenant_roles.get(tenant_id)
        if roles is None:
            return await self.user_roles.get((tenant_id, user_id)) or "member"
        return roles.get(user_id, "member")

    async def _load_key(self, digest: bytes) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            "SELECT tenant_id, role, user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", digest
        )

    async def _load_session(self, session_id: str) -> asyncpg.Record | None:
        # The user's current role comes with the session, so a role change applies within the cache ttl.
        return await self._pool.fetchrow(
            "SELECT s.tenant_id, s.revoked_at, u.role FROM sessions s"
            " JOIN users u ON u.tenant_id = s.tenant_id AND u.user_id = s.user_id WHERE s.family_id = $1",
            session_id,
        )


    async def _load_active_bot(self, key: tuple[str, str]) -> bool:
        return bool(await self._pool.fetchval(
            "SELECT true FROM bots WHERE tenant_id = $1 AND bot_id = $2 AND deleted_at IS NULL", *key
        ))

    async def _load_tenant_roles(self, tenant_id: str) -> dict[str, TenantRole] | None:
        rows = await self._pool.fetch("SELECT user_id, role FROM users WHERE tenant_id = $1 AND role <> 'member'"
                                      " LIMIT $2", tenant_id, self._role_map_max + 1)
        if len(rows) > self._role_map_max:
            return None
        return {r["user_id"]: r["role"] for r in rows if is_tenant_role(r["role"])}

    async def _load_user_role(self, key: tuple[str, str]) -> TenantRole | None:
        role = await self._pool.fetchval("SELECT role FROM users WHERE tenant_id = $1 AND user_id = $2", *key)
        return role if is_tenant_role(role) else None


def user_id_header(headers: Headers) -> str:
    """The X-User-Id a backend acts for, sent as UTF-8 bytes; 401 when missing, not UTF-8 or not a user id."""
    value = headers.get("x-user-id")
    if not value:
        raise AuthenticationError(f"missing X-User-Id header ({USER_ID_RULE}, as UTF-8)")
    try:
        # Starlette decodes header bytes as Latin-1, which maps each byte to one character: undo it.
        user_id = value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationError("X-User-Id is not valid UTF-8") from None
    if not is_user_id(user_id):
        raise AuthenticationError(f"malformed X-User-Id header ({USER_ID_RULE})")
    return user_id
