"""Access tokens: what TokenSigner accepts, key rotation, and forged tokens against the live app.

Forgeries are built from the real signing keys (the database-kept key the test runtime uses), so each
one differs from a token the app accepts in exactly the property under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import hypothesis
import jwt
import pytest
from hypothesis import strategies as st

from schemas.config import Settings
from schemas.errors import AuthenticationError
from service.identity.tokens import TokenSigner, parse_keys, stored_signing_keys
from tests.conftest import Tenant
from tests.service.test_auth import bearer, signup

SECRET = "s" * 64
OLD_SECRET = "o" * 64
ISSUER = "roomlog"


def signer(keys: dict[str, str] | None = None, *, issuer: str = ISSUER,
           clock: Callable[[], float] = time.time) -> TokenSigner:
    """A TokenSigner over `keys` (default: one key `k1`)."""
    return TokenSigner(keys or {"k1": SECRET}, issuer=issuer, clock=clock)


def access_token(s: TokenSigner, *, tenant_id: str = "tn_a", user_id: str = "usr_a", session_id: str | None = "ses_a",
                 ttl: int = 300) -> str:
    """An access token from `s`."""
    token, _ = s.issue(tenant_id=tenant_id, user_id=user_id, role="member", session_id=session_id,
                       token_type="access", ttl_seconds=ttl)
    return token


def b64(data: bytes) -> str:
    """base64url without padding, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: str | None) -> str:
    """A JWT assembled by hand: HMAC-SHA256 over it when `secret` is given, else an empty signature."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token, unverified."""
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def with_payload(token: str, **changes: Any) -> str:
    """`token` with its payload changed and its original signature kept."""
    header, _, signature = token.split(".")
    payload = claims_of(token) | changes
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


# TokenSigner


def test_issued_access_token_verifies_to_its_claims() -> None:
    s = signer()
    claims = s.verify(access_token(s, tenant_id="tn_x", user_id="usr_y", session_id="ses_z"), token_type="access")
    assert (claims.tenant_id, claims.user_id, claims.session_id, claims.token_type) == ("tn_x", "usr_y", "ses_z",
                                                                                        "access")


def test_expired_token_is_rejected() -> None:
    token = access_token(signer(clock=lambda: time.time() - 3600), ttl=60)
    with pytest.raises(AuthenticationError, match="expired"):
        signer().verify(token, token_type="access")


def test_token_with_negative_ttl_is_rejected() -> None:
    s = signer()
    with pytest.raises(AuthenticationError, match="expired"):
        s.verify(access_token(s, ttl=-60), token_type="access")


def test_token_signed_with_another_secret_is_rejected() -> None:
    forged = access_token(signer({"k1": "f" * 64}))
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_alg_none_token_is_rejected() -> None:
    payload = claims_of(access_token(signer()))
    forged = hand_made({"alg": "none", "typ": "JWT", "kid": "k1"}, payload, None)
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_hs512_token_is_rejected_even_with_the_right_secret() -> None:
    payload = claims_of(access_token(signer()))
    forged = jwt.encode(payload, SECRET, algorithm="HS512", headers={"kid": "k1"})
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_rs256_header_is_rejected_even_over_a_valid_hmac() -> None:
    payload = claims_of(access_token(signer()))
    forged = hand_made({"alg": "RS256", "typ": "JWT", "kid": "k1"}, payload, SECRET)
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_wrong_issuer_is_rejected() -> None:
    forged = access_token(signer(issuer="someone-else"))
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_unknown_kid_is_rejected_even_with_a_known_secret() -> None:
    forged = access_token(signer({"k9": SECRET}))
    with pytest.raises(AuthenticationError, match="unknown key"):
        signer().verify(forged, token_type="access")


def test_token_without_kid_is_rejected() -> None:
    forged = jwt.encode(claims_of(access_token(signer())), SECRET, algorithm="HS256")
    with pytest.raises(AuthenticationError):
        signer().verify(forged, token_type="access")


def test_ws_token_is_not_an_access_token() -> None:
    s = signer()
    ws, _ = s.issue(tenant_id="tn_a", user_id="usr_a", role="member", session_id="ses_a", token_type="ws",
                    ttl_seconds=60)
    with pytest.raises(AuthenticationError, match="wrong kind"):
        s.verify(ws, token_type="access")


def test_tampered_tenant_claim_breaks_the_signature() -> None:
    s = signer()
    forged = with_payload(access_token(s, tenant_id="tn_a"), tid="tn_b")
    with pytest.raises(AuthenticationError, match="invalid token"):
        s.verify(forged, token_type="access")


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(data=st.data())
def test_changing_any_character_of_header_or_payload_is_rejected(data: st.DataObject) -> None:
    s = signer()
    token = access_token(s)
    signed_part = token.rsplit(".", 1)[0]
    at = data.draw(st.integers(0, len(signed_part) - 1).filter(lambda i: signed_part[i] != "."), label="at")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    char = data.draw(st.sampled_from(alphabet).filter(lambda c: c != signed_part[at]), label="char")
    forged = token[:at] + char + token[at + 1:]
    with pytest.raises(AuthenticationError):
        s.verify(forged, token_type="access")


# key rotation


def test_the_first_listed_key_signs_with_its_kid() -> None:
    token = access_token(signer({"new": SECRET, "old": OLD_SECRET}))
    assert jwt.get_unverified_header(token)["kid"] == "new"


def test_token_of_the_old_key_verifies_while_it_is_listed_second() -> None:
    old_token = access_token(signer({"old": OLD_SECRET}))
    claims = signer({"new": SECRET, "old": OLD_SECRET}).verify(old_token, token_type="access")
    assert claims.user_id == "usr_a"


def test_token_of_the_old_key_is_rejected_once_the_key_is_removed() -> None:
    old_token = access_token(signer({"old": OLD_SECRET}))
    with pytest.raises(AuthenticationError, match="unknown key"):
        signer({"new": SECRET}).verify(old_token, token_type="access")


def test_parse_keys_keeps_the_configured_order() -> None:
    assert list(parse_keys(f"new={SECRET}, old={OLD_SECRET}")) == ["new", "old"]


@pytest.mark.parametrize("spec", ["k1=short", "k1", f"={SECRET}", f"k1={SECRET},k2"])
def test_parse_keys_rejects_malformed_entries_and_short_secrets(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_keys(spec)


# forged tokens against the app


async def live_keys(pool: asyncpg.Pool, app_settings: Settings) -> dict[str, str]:
    """The signing keys the test runtime uses."""
    return parse_keys(app_settings.jwt_keys) if app_settings.jwt_keys else await stored_signing_keys(pool)


def forgeries(keys: dict[str, str], issuer: str, claims: dict[str, Any], genuine: str) -> dict[str, str]:
    """Tokens for the same user and session, each wrong in one way."""
    kid, secret = next(iter(keys.items()))

    def issue(s: TokenSigner, token_type: Any = "access", ttl: int = 300) -> str:
        token, _ = s.issue(tenant_id=claims["tid"], user_id=claims["sub"], role="admin", session_id=claims["sid"],
                           token_type=token_type, ttl_seconds=ttl)
        return token

    return {
        "expired": issue(TokenSigner(keys, issuer=issuer, clock=lambda: time.time() - 3600), ttl=60),
        "other secret": issue(TokenSigner({kid: "f" * 64}, issuer=issuer)),
        "alg none": hand_made({"alg": "none", "typ": "JWT", "kid": kid}, claims, None),
        "HS512": jwt.encode(claims, secret, algorithm="HS512", headers={"kid": kid}),
        "RS256 header": hand_made({"alg": "RS256", "typ": "JWT", "kid": kid}, claims, secret),
        "wrong issuer": issue(TokenSigner(keys, issuer="someone-else")),
        "unknown kid": issue(TokenSigner({"kid-nobody-has": secret}, issuer=issuer)),
        "ws token": issue(TokenSigner(keys, issuer=issuer), token_type="ws"),
        "tampered tid": with_payload(genuine, tid="tn_someone_else"),
    }


FORGERIES = ["expired", "other secret", "alg none", "HS512", "RS256 header", "wrong issuer", "unknown kid",
             "ws token", "tampered tid"]


async def test_a_token_signed_like_the_apps_own_is_accepted(client: httpx.AsyncClient, pool: asyncpg.Pool,
                                                            settings: Settings) -> None:
    created = await signup(client)
    claims = claims_of(created["access_token"])
    keys = await live_keys(pool, settings)
    token, _ = TokenSigner(keys, issuer=settings.jwt_issuer).issue(
        tenant_id=claims["tid"], user_id=claims["sub"], role="admin", session_id=claims["sid"],
        token_type="access", ttl_seconds=60)
    assert (await client.get("/rooms", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("kind", FORGERIES)
async def test_forged_access_token_is_401_on_the_room_api(client: httpx.AsyncClient, pool: asyncpg.Pool,
                                                          settings: Settings, kind: str) -> None:
    created = await signup(client)
    claims = claims_of(created["access_token"])
    forged = forgeries(await live_keys(pool, settings), settings.jwt_issuer, claims, created["access_token"])[kind]
    response = await client.get("/rooms", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTHENTICATION_ERROR"


async def test_validly_signed_token_naming_another_tenant_than_its_session_is_401(
    client: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings, tenant: Tenant
) -> None:
    created = await signup(client)
    claims = claims_of(created["access_token"])
    token, _ = TokenSigner(await live_keys(pool, settings), issuer=settings.jwt_issuer).issue(
        tenant_id=tenant.tenant_id, user_id="admin", role="admin", session_id=claims["sid"],
        token_type="access", ttl_seconds=60)
    assert (await client.get("/rooms", headers=bearer(token))).status_code == 401


async def test_validly_signed_token_without_a_live_session_is_401(client: httpx.AsyncClient, pool: asyncpg.Pool,
                                                                  settings: Settings) -> None:
    created = await signup(client)
    s = TokenSigner(await live_keys(pool, settings), issuer=settings.jwt_issuer)
    for session_id in (None, "ses_does_not_exist"):
        token, _ = s.issue(tenant_id=created["tenant"]["tenant_id"], user_id=created["user"]["user_id"],
                           role="admin", session_id=session_id, token_type="access", ttl_seconds=60)
        assert (await client.get("/rooms", headers=bearer(token))).status_code == 401


async def test_another_tenants_end_user_cannot_read_this_tenants_room(client: httpx.AsyncClient,
                                                                      tenant: Tenant) -> None:
    room = (await client.post("/rooms", json={"type": "group", "members": ["bob"]},
                              headers=tenant.as_user("alice"))).json()
    outsider = await signup(client)
    for path in (f"/rooms/{room['room_id']}", f"/rooms/{room['room_id']}/messages"):
        response = await client.get(path, headers=bearer(outsider["access_token"]))
        assert response.status_code == 404, path


async def test_bearer_scheme_other_than_bearer_is_401(client: httpx.AsyncClient) -> None:
    created = await signup(client)
    response = await client.get("/rooms", headers={"Authorization": f"Basic {created['access_token']}"})
    assert response.status_code == 401
