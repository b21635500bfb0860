"""Users directory, blocks and API keys: request and response bodies, and their errors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from schemas.api import UserId, _Request
from schemas.errors import Conflict, Forbidden, NotFound, ValidationError

TenantRole = Literal["customer", "member", "agent", "admin"]
# PostgreSQL text cannot hold NUL: stored strings exclude it (user ids exclude every control character).
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
Phone = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9 ()./-]+$")]
# Long enough to resist guessing, short enough that hashing a hostile body costs nothing special.
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00]+$")]


class CreateUser(_Request):
    display_name: DisplayName
    user_id: UserId | None = None
    email: Email | None = None
    phone: Phone | None = None
    role: TenantRole = "member"
    password: Password | None = None


class UpdateUser(_Request):
    role: TenantRole | UnsetType = UNSET
    display_name: DisplayName | UnsetType = UNSET


class User(msgspec.Struct):
    """A user of the tenant; email and phone are null unless the caller may see them."""

    user_id: str
    display_name: str
    email: str | None
    phone: str | None
    avatar_url: str | None
    role: TenantRole
    created_at: datetime


class Block(msgspec.Struct):
    user_id: str
    since: datetime


class CreateApiKey(_Request):
    name: KeyName
    role: TenantRole = "admin"


class ApiKey(msgspec.Struct):
    key_id: str
    prefix: str
    name: str
    role: TenantRole
    created_at: datetime
    revoked_at: datetime | None


class CreatedApiKey(msgspec.Struct):
    """A new key; `api_key` is the only copy there will ever be."""

    key_id: str
    api_key: str
    prefix: str
    name: str
    role: TenantRole
    created_at: datetime


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"


class UserExists(Conflict):
    code = "USER_EXISTS"


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


class LastAdmin(Conflict):
    code = "LAST_ADMIN"


class CannotBlockSelf(ValidationError):
    code = "CANNOT_BLOCK_SELF"


class RoleTooHigh(Forbidden):
    code = "ROLE_TOO_HIGH"


class ApiKeyNotFound(NotFound):
    code = "API_KEY_NOT_FOUND"
