"""Tenant settings as the platform admin reads and changes them: per-tenant rate limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

# 0 = unlimited, null = the service's default; the column is a PostgreSQL integer.
Limit = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]


class TenantSettings(msgspec.Struct):
    tenant_id: str
    name: str
    rate_limit: int | None
    send_rate_limit: int | None
    created_at: datetime


class UpdateTenantSettings(msgspec.Struct, forbid_unknown_fields=True):
    rate_limit: Limit | UnsetType | None = UNSET
    send_rate_limit: Limit | UnsetType | None = UNSET


