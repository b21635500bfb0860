"""End-user accounts (seed 004): sign up, log in, refresh, log out, who am I, profile, password."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas import accounts as schema
from schemas.api import Success
from schemas.errors import AuthenticationError, EmailTaken, NotFound, RateLimited, SessionRequired, WrongPassword
from service.identity.accounts import Accounts
from service.web.endpoints import Endpoint
from service.web.request import JSON, body_as, caller, runtime_of


def accounts_of(request: Request) -> Accounts:
    """The runtime's accounts service."""
    return runtime_of(request).accounts


async def signup(request: Request) -> Response:
    cmd = await body_as(request, schema.Signup)
    return JSON(await accounts_of(request).signup(cmd), status_code=201)


async def login(request: Request) -> Response:
    cmd = await body_as(request, schema.Login)
    # The connection's address only; see service.identity.accounts.throttle_keys for why not X-Forwarded-For.
    address = request.client.host if request.client else None
    return JSON(await accounts_of(request).login(cmd, client_address=address))


async def refresh(request: Request) -> Response:
    cmd = await body_as(request, schema.Refresh)
    return JSON(await accounts_of(request).refresh(cmd.refresh_token))


async def logout(request: Request) -> Response:
    principal = await caller(request)
    await accounts_of(request).logout(principal)
    return JSON(Success())


async def me(request: Request) -> Response:
    principal = await caller(request)
    return JSON(await accounts_of(request).me(principal))


async def update_profile(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, schema.UpdateProfile)
    return JSON(await accounts_of(request).update_profile(principal, cmd))


async def change_password(request: Request) -> Response:
    principal = await caller(request)
    cmd = await body_as(request, schema.ChangePassword)
    await accounts_of(request).change_password(principal, cmd)
    return JSON(Success())


ENDPOINTS: list[Endpoint] = [
    Endpoint("POST", "/auth/signup", signup, "Create an account and its tenant (the account is the tenant's admin)",
             body=schema.Signup, response=schema.SignupResult, status=201, errors=(EmailTaken,), auth="none"),
    Endpoint("POST", "/auth/login", login, "Exchange email and password for an access JWT and a refresh token",
             body=schema.Login, response=schema.LoginResult, errors=(AuthenticationError, RateLimited), auth="none"),
    Endpoint("POST", "/auth/refresh", refresh,
             "Spend a refresh token for new tokens; reusing a spent one revokes its session",
             body=schema.Refresh, response=schema.Tokens, errors=(AuthenticationError,), auth="none"),
    Endpoint("POST", "/auth/logout", logout, "End the current session (bearer token only)",
             response=Success, errors=(SessionRequired,)),
    Endpoint("GET", "/auth/me", me, "The authenticated user and their tenant", response=schema.Me,
             errors=(NotFound,)),
    Endpoint("PATCH", "/auth/profile", update_profile, "Update display name, avatar URL or time zone (bearer only)",
             body=schema.UpdateProfile, response=schema.User, errors=(SessionRequired, NotFound)),
    Endpoint("POST", "/auth/change-password", change_password,
             "Change the password; the caller's other sessions are revoked (bearer only)",
             body=schema.ChangePassword, response=Success,
             errors=(WrongPassword, SessionRequired, RateLimited)),
]
