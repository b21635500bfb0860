"""End-user accounts: argon2 password hashes, login sessions with rotating refresh tokens, login throttling.

A login opens a session (a `sessions` row, the refresh-token family). Each refresh token works once:
refreshing spends it and hands out the next one of the same family. A spent token presented again means
two parties hold the family's tokens (one of them a thief), so the whole session is revoked and every
access token naming it stops working. Only SHA-256 digests of refresh tokens are stored; they are 256-bit
random, so a fast hash is enough.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import secrets
import zoneinfo
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
from msgspec import UNSET

from eventstore.types import Connection
from schemas.accounts import (
    ChangePassword,
    Login,
    LoginResult,
    Me,
    Signup,
    SignupResult,
    TenantInfo,
    Tokens,
    UpdateProfile,
    User,
)
from schemas.config import Settings
from schemas.errors import (
    AuthenticationError,
    EmailTaken,
    NotFound,
    RateLimited,
    SessionRequired,
    ValidationError,
    WrongPassword,
)
from service.domain.urls import http_url_problem
from service.identity.auth import Authenticator, Principal
from service.identity.ids import new_id
from service.identity.passwords import Passwords

REFRESH_PREFIX = "rlr_"
BAD_CREDENTIALS = "wrong email or password"

_USER_COLUMNS = "user_id, email, display_name, avatar_url, timezone, role, created_at"




def new_refresh_token() -> str:
    """A fresh 256-bit refresh token (opaque, not a JWT)."""
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def refresh_digest(token: str) -> bytes:
    """The stored form of a refresh token."""
    return hashlib.sha256(token.encode()).digest()


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: str) -> bool:
    """Whether `name` is a time zone of the IANA database zoneinfo uses (such as `Europe/Paris`)."""
    return name in _timezones()


def valid_avatar_url(url: str) -> bool:
    """Whether `url` is an http(s) URL we accept (service.domain.urls)."""
    return http_url_problem(url) is None


# Client addresses come from the connection only (request.client.host). X-Forwarded-For is whatever the
# client wrote: honouring it would let an attacker pick a fresh "address" per guess and escape the
# per-address limits, or name a victim's address to lock it out. Behind a trusted proxy, let uvicorn
# rewrite the client address (--proxy-headers --forwarded-allow-ips=<proxy>) instead.
@dataclass(frozen=True, slots=True)
class LoginKeys:
    """The login_failures keys one login attempt counts against."""

    account: str
    pair: str | None = None  # (address, account)
    address: str | None = None


def throttle_keys(email: str, client_address: str | None) -> LoginKeys:
    """The keys of a login attempt: its account, its (address, account) pair and its client address."""
    account = f"email:{email.lower()}"
    if not client_address:
        return LoginKeys(account)
    address = address_key(client_address)
    return LoginKeys(account, f"pair:{address}:{account}", f"addr:{address}")


def address_key(address: str) -> str:
    """What counts as one client address: an IPv4 address, or an IPv6 /64 (one subscriber's usual share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a test client, a unix socket): take it as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # Anyone holding a /64 can use 2^64 addresses; counting per address would not limit them at all.
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Throttle:
    """Counts failed attempts per key within `window_seconds` and tells how long a key stays at its limit."""

    window_seconds: int

    async def waits(self, conn: Connection, limits: list[tuple[str, int]]) -> list[float | None]:
        """For each (key, max_failures): seconds until the key is below max_failures again, None if below now.

        A max_failures of 0 or less means no limit.
        """
        counted = [(key, limit) for key, limit in limits if limit > 0]
        if not counted:
            return [None] * len(limits)
        # The max_failures-th newest failure in the window: once it leaves the window, a key is under the limit.
        rows = await conn.fetch(
            """
            SELECT k.key, k.lim, extract(epoch FROM f.failed_at + $3 * interval '1 second' - now()) AS wait
            FROM unnest($1::text[], $2::int[]) AS k (key, lim)
            CROSS JOIN LATERAL (
                SELECT failed_at FROM login_failures
                WHERE key = k.key AND failed_at > now() - $3 * interval '1 second'
                ORDER BY failed_at DESC OFFSET k.lim - 1 LIMIT 1
            ) AS f
            """,
            [k for k, _ in counted], [n for _, n in counted], self.window_seconds,
        )
        found = {(r["key"], r["lim"]): max(1.0, float(r["wait"])) for r in rows}
        return [found.get((key, limit)) for key, limit in limits]

    async def check(self, conn: Connection, limits: list[tuple[str, int]]) -> None:
        """Raise RateLimited (with `retry_after`) when any (key, max_failures) is at its limit."""
        blocked = [w for w in await self.waits(conn, limits) if w is not None]
        if blocked:
            raise too_many_failures(max(blocked))

    async def record_failure(self, conn: Connection, keys: list[str]) -> None:
        """Count one failed attempt against every key (and drop failures that left the window)."""
        await conn.execute("INSERT INTO login_failures (key) SELECT unnest($1::text[])", keys)
        await conn.execute(
            "DELETE FROM login_failures WHERE failed_at < now() - $1 * interval '1 second'", self.window_seconds
        )

    async def clear(self, conn: Connection, keys: list[str]) -> None:
        """Forget these keys' failures (after a success)."""
        await conn.execute("DELETE FROM login_failures WHERE key = ANY($1::text[])", keys)


def too_many_failures(wait: float) -> RateLimited:
    """The 429 for a throttled attempt, retry_after in whole seconds."""
    seconds = math.ceil(wait)
    return RateLimited(f"too many failed attempts; try again in {seconds} s", retry_after=seconds)


@dataclass(frozen=True)
class LoginThrottle:
    """The login throttle (OWASP's authentication guidance: lock out per account, not per address).

    - per (address, account), `pair_max` failures: one source guessing one account is stopped soon,
      while its owner elsewhere still logs in;
    - per account, `account_max` failures from anywhere: a guessing attack spread over many addresses;
    - per address, `address_max` failures over all accounts (password spraying, credential stuffing).
      Over it the address gets one guess per account: a correct password of an account it has not
      failed on still logs in, so people behind one NAT are not locked out by a neighbour.

    Limits are checked before the password is, so a throttled guess learns nothing, even when right.
    """

    throttle: Throttle
    pair_max: int
    account_max: int
    address_max: int

    async def check(self, conn: Connection, keys: LoginKeys) -> None:
        """Raise RateLimited (with `retry_after`) when this attempt may not be verified now."""
        pair, account, address, pair_once = await self.throttle.waits(conn, [
            (keys.pair or "", self.pair_max if keys.pair else 0),
            (keys.account, self.account_max),
            (keys.address or "", self.address_max if keys.address else 0),
            (keys.pair or "", 1 if keys.pair and self.address_max > 0 else 0),
        ])
        blocked = [w for w in (pair, account) if w is not None]
        if address is not None and pair_once is not None:
            blocked.append(min(address, pair_once))  # either leaving the window lets this pair try again
        if blocked:
            raise too_many_failures(max(blocked))

    async def record_failure(self, conn: Connection, keys: LoginKeys) -> None:
        """Count a failed attempt against the account, the pair and the address."""
        await self.throttle.record_failure(conn, [k for k in (keys.account, keys.pair, keys.address) if k])

    async def clear(self, conn: Connection, keys: LoginKeys) -> None:
        """Forget the account's and this pair's failures; the address keeps its count (it may hold many accounts)."""
        await self.throttle.clear(conn, [k for k in (keys.account, keys.pair) if k])


class Accounts:
    """The /auth/* operations over the database, the token signer and the session cache."""

    def __init__(self, pool: asyncpg.Pool, auth: Authenticator, settings: Settings, *, passwords: Passwords) -> None:
        self._pool = pool
        self._auth = auth
        self._settings = settings
        self._passwords = passwords
        throttle = Throttle(settings.login_window_seconds)
        self._throttle = throttle
        self._logins = LoginThrottle(throttle, pair_max=settings.login_max_failures,
                                     account_max=settings.login_account_max_failures,
                                     address_max=settings.login_address_max_failures)

    async def signup(self, cmd: Signup) -> SignupResult:
        """Create a tenant and its owner (role admin), and log the owner in."""
        password_hash = await self._passwords.hash(cmd.password)
        tenant = TenantInfo(tenant_id=new_id("tn"), name=cmd.tenant_name or cmd.display_name)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)", tenant.tenant_id,
                                   tenant.name)
                row = await conn.fetchrow(
                    "INSERT INTO users (tenant_id, user_id, email, display_name, role, password_hash)"
                    f" VALUES ($1, $2, $3, $4, 'admin', $5) RETURNING {_USER_COLUMNS}",
                    tenant.tenant_id, new_id("usr"), cmd.email, cmd.display_name, password_hash,
                )
                assert row is not None
                tokens = await self._open_session(conn, tenant.tenant_id, row["user_id"], row["role"])
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "users_email":
                raise
            raise EmailTaken("an account with this email exists", field="email") from None
        return SignupResult(**msgspec.structs.asdict(tokens), user=user_of(row), tenant=tenant)

    async def login(self, cmd: Login, *, client_address: str | None) -> LoginResult:
        """Check the credentials (throttled: see LoginThrottle) and open a session."""
        keys = throttle_keys(cmd.email, client_address)
        # No connection is held while hashing: a burst of logins must not drain the pool.
        async with self._pool.acquire() as conn:
            await self._logins.check(conn, keys)
            row = await conn.fetchrow(
                f"SELECT tenant_id, password_hash, {_USER_COLUMNS} FROM users WHERE lower(email) = lower($1)",
                cmd.email,
            )
        stored = None if row is None else row["password_hash"]
        # Unknown email or not: the same hash work and the same answer.
        if not await self._passwords.verify(stored, cmd.password):
            async with self._pool.acquire() as conn:
                await self._logins.record_failure(conn, keys)
            raise AuthenticationError(BAD_CREDENTIALS)
        assert row is not None and stored is not None
        rehashed = await self._passwords.hash(cmd.password) if self._passwords.needs_rehash(stored) else None
        async with self._pool.acquire() as conn, conn.transaction():
            await self._logins.clear(conn, keys)
            if rehashed is not None:
                await conn.execute(
                    "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND user_id = $2",
                    row["tenant_id"], row["user_id"], rehashed,
                )
            await conn.execute("DELETE FROM refresh_tokens WHERE expires_at < now()")
            tokens = await self._open_session(conn, row["tenant_id"], row["user_id"], row["role"])
        return LoginResult(**msgspec.structs.asdict(tokens), user=user_of(row))

    async def refresh(self, token: str) -> Tokens:
        """Spend `token` for a new access and refresh token; a spent token revokes its whole session."""
        async with self._pool.acquire() as conn, conn.transaction():
            # FOR UPDATE: of two concurrent refreshes with one token, the second sees it spent.
            row = await conn.fetchrow(
                """
                SELECT r.family_id, r.tenant_id, r.user_id, r.spent_at, r.expires_at <= now() AS expired,
                       s.revoked_at, u.role
                FROM refresh_tokens r
                JOIN sessions s ON s.family_id = r.family_id
                JOIN users u ON u.tenant_id = r.tenant_id AND u.user_id = r.user_id
                WHERE r.token_hash = $1 FOR UPDATE OF r
                """,
                refresh_digest(token),
            )
            if row is None:
                raise AuthenticationError("invalid refresh token")
            if row["revoked_at"] is not None:
                raise AuthenticationError("session ended; log in again")
            if row["spent_at"] is None and not row["expired"]:
                await conn.execute("UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1",
                                   refresh_digest(token))
                return await self._next_tokens(conn, row)
            reused = row["spent_at"] is not None
            if reused:
                await self._revoke(conn, row["family_id"], "refresh_token_reuse")
        # Raised after the block so the revocation is committed before the caller hears 401.
        if reused:
            self._auth.sessions.forget(row["family_id"])
            raise AuthenticationError("refresh token already used; the session is revoked")
        raise AuthenticationError("refresh token expired; log in again")

    async def logout(self, principal: Principal) -> None:
        """Revoke the caller's session: its refresh tokens and access tokens stop working."""
        session_id = session_of(principal)
        async with self._pool.acquire() as conn:
            await self._revoke(conn, session_id, "logout")
        self._auth.sessions.forget(session_id)

    async def me(self, principal: Principal) -> Me:
        """The caller and their tenant (a user without an account row is described by its id alone)."""
        row = await self._pool.fetchrow(
            "SELECT t.tenant_id, t.name, u.user_id, u.email, u.display_name, u.avatar_url, u.timezone, u.role,"
            " u.created_at"
            " FROM tenants t LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.user_id = $2"
            " WHERE t.tenant_id = $1",
            principal.tenant_id, principal.user_id,
        )
        if row is None:
            raise NotFound("tenant not found")
        tenant = TenantInfo(tenant_id=row["tenant_id"], name=row["name"])
        if row["user_id"] is None:
            user = User(user_id=principal.user_id, email=None, display_name=principal.user_id, avatar_url=None,
                        timezone=None, role=principal.role, created_at=None)
        else:
            user = user_of(row, role=principal.role)
        return Me(user=user, tenant=tenant)

    async def update_profile(self, principal: Principal, cmd: UpdateProfile) -> User:
        """Change the caller's display name, avatar URL or time zone (null clears the last two)."""
        session_of(principal)
        if isinstance(cmd.avatar_url, str) and not valid_avatar_url(cmd.avatar_url):
            raise ValidationError("avatar_url must be an http(s) URL", field="avatar_url")
        if isinstance(cmd.timezone, str) and not valid_timezone(cmd.timezone):
            raise ValidationError("timezone must be an IANA time zone such as Europe/Paris", field="timezone")
        row = await self._pool.fetchrow(
            f"""
            UPDATE users SET
                display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
                avatar_url = CASE WHEN $5 THEN $6 ELSE avatar_url END,
                timezone = CASE WHEN $7 THEN $8 ELSE timezone END
            WHERE tenant_id = $1 AND user_id = $2 RETURNING {_USER_COLUMNS}
            """,
            principal.tenant_id, principal.user_id,
            cmd.display_name is not UNSET, _or_none(cmd.display_name),
            cmd.avatar_url is not UNSET, _or_none(cmd.avatar_url),
            cmd.timezone is not UNSET, _or_none(cmd.timezone),
        )
        if row is None:
            raise NotFound("user not found")
        return user_of(row)

    async def change_password(self, principal: Principal, cmd: ChangePassword) -> None:
        """Replace the caller's password and revoke their other sessions (this one stays valid)."""
        session_id = session_of(principal)
        keys = [f"user:{principal.tenant_id}:{principal.user_id}"]
        async with self._pool.acquire() as conn:
            # A stolen access token must not become a way to guess the password without limit.
            await self._throttle.check(conn, [(keys[0], self._settings.login_max_failures)])
            stored = await conn.fetchval(
                "SELECT password_hash FROM users WHERE tenant_id = $1 AND user_id = $2",
                principal.tenant_id, principal.user_id,
            )
        if not await self._passwords.verify(stored, cmd.current_password):
            async with self._pool.acquire() as conn:
                await self._throttle.record_failure(conn, keys)
            raise WrongPassword("the current password is wrong", field="current_password")
        new_hash = await self._passwords.hash(cmd.new_password)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND user_id = $2",
                principal.tenant_id, principal.user_id, new_hash,
            )
            revoked = await conn.fetch(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'password_changed'"
                " WHERE tenant_id = $1 AND user_id = $2 AND family_id <> $3 AND revoked_at IS NULL"
                " RETURNING family_id",
                principal.tenant_id, principal.user_id, session_id,
            )
            await self._throttle.clear(conn, keys)
        for r in revoked:
            self._auth.sessions.forget(r["family_id"])

    async def _open_session(self, conn: Connection, tenant_id: str, user_id: str, role: str) -> Tokens:
        family_id = new_id("ses")
        await conn.execute("INSERT INTO sessions (family_id, tenant_id, user_id) VALUES ($1, $2, $3)",
                           family_id, tenant_id, user_id)
        return await self._next_tokens(conn, {"family_id": family_id, "tenant_id": tenant_id,
                                              "user_id": user_id, "role": role})

    async def _next_tokens(self, conn: Connection, session: Any) -> Tokens:
        refresh_token = new_refresh_token()
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, tenant_id, user_id, expires_at)"
            " VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')",
            refresh_digest(refresh_token), session["family_id"], session["tenant_id"], session["user_id"],
            self._settings.refresh_token_seconds,
        )
        access_token, _ = self._auth.signer.issue(
            tenant_id=session["tenant_id"], user_id=session["user_id"], role=session["role"],
            session_id=session["family_id"], token_type="access", ttl_seconds=self._settings.access_token_seconds,
        )
        return Tokens(access_token=access_token, refresh_token=refresh_token,
                      expires_in=self._settings.access_token_seconds)

    async def _revoke(self, conn: Connection, family_id: str, reason: str) -> None:
        await conn.execute(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE family_id = $1 AND revoked_at IS NULL",
            family_id, reason,
        )


def session_of(principal: Principal) -> str:
    """The caller's login session id; SessionRequired (403) for API-key and platform callers."""
    if principal.via != "jwt" or principal.session_id is None:
        raise SessionRequired("this operation needs a user's bearer access token, not an API key")
    return principal.session_id


def user_of(row: Any, *, role: str | None = None) -> User:
    """The API view of a users row (`role` overrides the stored role with the caller's effective one)."""
    return User(
        user_id=row["user_id"], email=row["email"], display_name=row["display_name"], avatar_url=row["avatar_url"],
        timezone=row["timezone"], role=role or row["role"], created_at=row["created_at"],
    )


def _or_none(value: object) -> Any:
    return None if value is UNSET else value
