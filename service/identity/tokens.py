"""Signed tokens (JWT, HS256 pinned): access tokens for end users, short-lived WebSocket tokens, and the reply
tokens a bot.triggered delivery hands its bot.

Keys rotate by key id: the first configured key signs, every configured key verifies, and the token
header names its `kid`, so a retired key keeps verifying while it is still listed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import jwt

from schemas.errors import AuthenticationError

ALGORITHM = "HS256"
LEEWAY_SECONDS = 5
VERIFIED_CACHE_SIZE = 50_000
TokenType = Literal["access", "ws", "bot"]


@dataclass(frozen=True)
class Claims:
    tenant_id: str
    user_id: str
    role: str
    session_id: str | None
    token_type: TokenType
    expires_at: int


class TokenSigner:
    """Issues and verifies roomlog JWTs with a pinned algorithm, issuer and expiry."""

    def __init__(self, keys: dict[str, str], *, issuer: str, clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._keys = keys
        self._active = next(iter(keys))
        self._issuer = issuer
        self._clock = clock
        self._verified: dict[str, Claims] = {}

    def issue(self, *, tenant_id: str, user_id: str, role: str, session_id: str | None, token_type: TokenType,
              ttl_seconds: int) -> tuple[str, int]:
        """A signed token and its expiry (epoch seconds)."""
        now = int(self._clock())
        expires_at = now + ttl_seconds
        payload: dict[str, Any] = {
            "iss": self._issuer, "sub": user_id, "tid": tenant_id, "role": role, "typ": token_type,
            "iat": now, "exp": expires_at,
        }
        if session_id is not None:
            payload["sid"] = session_id
        token = jwt.encode(payload, self._keys[self._active], algorithm=ALGORITHM, headers={"kid": self._active})
        return token, expires_at

    def verify(self, token: str, *, token_type: TokenType) -> Claims:
        """The claims of a valid token of `token_type`; AuthenticationError for anything else."""
        # A verified token's claims never change: reuse them until it expires (pyjwt takes ~150 us).
        known = self._verified.get(token)
        if known is not None and known.token_type == token_type:
            if known.expires_at + LEEWAY_SECONDS >= self._clock():
                return known
            del self._verified[token]
        claims = self._verify(token, token_type=token_type)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def kind_of(self, token: str) -> str | None:
        """The `typ` a token claims, unverified: which checks `verify` must then apply."""
        try:
            typ = jwt.decode(token, options={"verify_signature": False}).get("typ")
        except jwt.PyJWTError:
            return None
        return typ if isinstance(typ, str) else None

    def _verify(self, token: str, *, token_type: TokenType) -> Claims:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise AuthenticationError("token signed with an unknown key")
            payload = jwt.decode(
                token, key, algorithms=[ALGORITHM], issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "sub", "tid", "typ"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.PyJWTError:
            raise AuthenticationError("invalid token") from None
        if payload.get("typ") != token_type:
            raise AuthenticationError("wrong kind of token")
        return Claims(
            tenant_id=str(payload["tid"]), user_id=str(payload["sub"]), role=str(payload.get("role", "member")),
            session_id=payload.get("sid"), token_type=token_type, expires_at=int(payload["exp"]),
        )


def parse_keys(spec: str) -> dict[str, str]:
    """`kid=secret,kid2=secret2` → {kid: secret}, in order; the first entry signs."""
    keys: dict[str, str] = {}
    for part in spec.split(","):
        kid, sep, secret = part.strip().partition("=")
        if not sep or not kid or len(secret) < 32:
            raise ValueError("ROOMLOG_JWT_KEYS entries are kid=secret with secrets of at least 32 characters")
        keys[kid] = secret
    return keys


async def stored_signing_keys(pool: asyncpg.Pool) -> dict[str, str]:
    """A signing key generated once and kept in the database, shared by every instance using it."""
    value = await pool.fetchval("SELECT value FROM instance_secrets WHERE name = 'jwt'")
    if value is None:  # first start; read first so a read-only database with a key still starts
        await pool.execute(
            "INSERT INTO instance_secrets (name, value) VALUES ('jwt', $1) ON CONFLICT (name) DO NOTHING",
            secrets.token_urlsafe(48),
        )
        value = await pool.fetchval("SELECT value FROM instance_secrets WHERE name = 'jwt'")
    return {"db1": str(value)}
