"""End-user accounts (seed 004, /auth/*): request and response bodies, and the errors only accounts raise."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.errors import Conflict, Forbidden

MIN_PASSWORD_CHARS = 8
# Long enough for any passphrase; the bound keeps one request from making the hash do megabytes of work.
MAX_PASSWORD_CHARS = 1024

# A pragmatic shape check (one @, a dot in the domain, no spaces); the real proof of an address is a mail.
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")]
Password = Annotated[str, msgspec.Meta(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)]
# Checking a password of any length must not reveal the policy's bounds on login, only fail.
AnyPassword = Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD_CHARS)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TenantName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# The scheme (http/https) is checked by the service; the length bound here.
AvatarUrl = Annotated[str, msgspec.Meta(max_length=2048)]
Timezone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RefreshToken = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TenantRole = Literal["customer", "member", "agent", "admin"]


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    pass


class Signup(_Request):
    email: Email
    password: Password
    display_name: DisplayName
    tenant_name: TenantName | None = None


class Login(_Request):
    email: Email
    password: AnyPassword


class Refresh(_Request):
    refresh_token: RefreshToken


class UpdateProfile(_Request):
    display_name: DisplayName | UnsetType = UNSET
    avatar_url: AvatarUrl | UnsetType | None = UNSET
    timezone: Timezone | UnsetType | None = UNSET


class ChangePassword(_Request):
    current_password: AnyPassword
    new_password: Password


class User(msgspec.Struct):
    user_id: str
    email: str | None
    display_name: str
    avatar_url: str | None
    timezone: str | None
    # The caller's effective role (for an API key, capped by the key's own role).
    role: str
    # None for a user a tenant backend acts for (X-User-Id) without an account row.
    created_at: datetime | None


class TenantInfo(msgspec.Struct):
    tenant_id: str
    name: str


class Tokens(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    # Seconds until the access token expires.
    expires_in: int


class LoginResult(Tokens, kw_only=True):
    user: User


class SignupResult(LoginResult, kw_only=True):
    tenant: TenantInfo


class Me(msgspec.Struct):
    user: User
    tenant: TenantInfo


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class SessionRequired(Forbidden):
    """The operation acts on a login session, so it needs a bearer access token, not an API key."""

    code = "SESSION_REQUIRED"


class WrongPassword(Forbidden):
    """The current password given to change-password is wrong (403: the caller is authenticated)."""

    code = "WRONG_PASSWORD"
