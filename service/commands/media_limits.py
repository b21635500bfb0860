"""Per-tenant media limits: set by the platform admin as an event of the tenant's `media-limits:` stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.media_limits import fetch_media_limits
from projections.streams import media_limits_stream
from schemas.events import MediaLimitsSet
from schemas.media import LimitField, MediaLimitsView, SetMediaLimits
from service.commands.media import tenant_limits
from service.commands.metadata import metadata_for, retry_on_conflict
from service.domain.authorization import authorize
from service.identity.auth import Principal
from service.identity.tenants import tenant_settings

if TYPE_CHECKING:
    from service.runtime import Runtime

_FIELDS: tuple[LimitField, ...] = ("max_bytes", "allowed_types", "quota_bytes")


async def limits_view(runtime: Runtime, principal: Principal, tenant_id: str) -> MediaLimitsView:
    """The limits that apply to the tenant's uploads (platform admin); TenantNotFound for no such tenant."""
    authorize("tenant.settings", principal.role)
    await tenant_settings(runtime.pool, tenant_id)  # 404 unless the tenant exists
    limits = await tenant_limits(runtime, tenant_id)
    own = await fetch_media_limits(runtime.pool, tenant_id)
    return MediaLimitsView(
        tenant_id=tenant_id, max_bytes=limits.max_bytes, allowed_types=sorted(limits.allowed_types),
        quota_bytes=limits.quota_bytes, overridden=[f for f in _FIELDS if own is not None and own[f] is not None],
        updated_at=None if own is None else own["updated_at"],
    )


async def set_limits(runtime: Runtime, principal: Principal, tenant_id: str, cmd: SetMediaLimits) -> MediaLimitsView:
    """Replace the tenant's own limits (a `media.limits_set` event); new upload requests follow them at once."""
    authorize("tenant.settings", principal.role)
    await tenant_settings(runtime.pool, tenant_id)

    async def attempt() -> None:
        own = await fetch_media_limits(runtime.pool, tenant_id)
        seq = 0 if own is None else own["updated_seq"]
        event = MediaLimitsSet(by=principal.user_id, max_bytes=cmd.max_bytes, quota_bytes=cmd.quota_bytes,
                               allowed_types=None if cmd.allowed_types is None else sorted(set(cmd.allowed_types)))
        # The platform admin belongs to no tenant: the event is the tenant's, its actor the platform admin.
        metadata = metadata_for(Principal(tenant_id=tenant_id, user_id=principal.user_id, role=principal.role))
        await runtime.appender.append(media_limits_stream(tenant_id), [event], tenant_id=tenant_id,
                                      metadata=metadata, expected_seq=seq, create_stream=seq == 0)

    await retry_on_conflict(attempt)
    return await limits_view(runtime, principal, tenant_id)
