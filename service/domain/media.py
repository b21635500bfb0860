"""Media rules: what may be uploaded, when an upload may be confirmed, who may read it, what is served inline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.errors import (
    MediaNotPending,
    MediaNotUploaded,
    MediaQuotaExceeded,
    MediaSizeMismatch,
    MediaTooLarge,
    MediaTypeNotAllowed,
    MediaUploadExpired,
)
from schemas.events import MediaUploadRequested
from schemas.media import RequestUpload

# Served as downloads whatever a tenant allows: a browser would run their scripts on the store's origin.
NEVER_INLINE = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "application/javascript",
                          "text/javascript", "application/xml", "text/xml"})
_INLINE_PREFIXES = ("image/", "audio/", "video/")


@dataclass(frozen=True)
class MediaLimits:
    """One tenant's limits: the largest file, the content types it may upload, the bytes it may store (0: any)."""

    max_bytes: int
    allowed_types: frozenset[str]
    quota_bytes: int


def effective_limits(
    defaults: MediaLimits, *, max_bytes: int | None, allowed_types: list[str] | None, quota_bytes: int | None,
) -> MediaLimits:
    """A tenant's limits: its own where it has them, the service's defaults elsewhere."""
    return MediaLimits(
        max_bytes=defaults.max_bytes if max_bytes is None else max_bytes,
        allowed_types=defaults.allowed_types if allowed_types is None else frozenset(allowed_types),
        quota_bytes=defaults.quota_bytes if quota_bytes is None else quota_bytes,
    )


@dataclass(frozen=True)
class PendingUpload:
    """What confirm needs to know of an upload as the read model holds it."""

    status: str
    size: int
    expires_at: datetime


def upload_key(tenant_id: str, media_id: str) -> str:
    """Where the client's PUT lands; confirm copies verified bytes away from it, so a later PUT changes nothing."""
    return f"uploads/{tenant_id}/{media_id}"


def media_key(tenant_id: str, media_id: str, sha256: str) -> str:
    """Where confirmed bytes live, named by their hash: two racing confirms of the same bytes write one object."""
    return f"media/{tenant_id}/{media_id}/{sha256}"


def thumbnail_key(tenant_id: str, media_id: str, sha256: str) -> str:
    return f"media/{tenant_id}/{media_id}/{sha256}.thumb"


def decide_upload(
    cmd: RequestUpload, *, tenant_id: str, media_id: str, user_id: str, limits: MediaLimits, used_bytes: int,
    now: datetime, expires_in: int,
) -> MediaUploadRequested:
    """The upload request event, or the limit it breaks (type not allowed, too large, over quota)."""
    if cmd.content_type not in limits.allowed_types:
        raise MediaTypeNotAllowed(f"{cmd.content_type} may not be uploaded", field="content_type")
    if cmd.size > limits.max_bytes:
        raise MediaTooLarge(f"files may be at most {limits.max_bytes} bytes", field="size")
    if limits.quota_bytes and used_bytes + cmd.size > limits.quota_bytes:
        raise MediaQuotaExceeded(f"the tenant's {limits.quota_bytes} bytes of storage would be exceeded",
                                 field="size")
    return MediaUploadRequested(
        media_id=media_id, uploaded_by=user_id, filename=cmd.filename, content_type=cmd.content_type,
        size=cmd.size, object_key=upload_key(tenant_id, media_id), expires_at=now + timedelta(seconds=expires_in),
        room_id=cmd.room_id,
    )


def check_confirmable(upload: PendingUpload, *, stored_size: int | None, now: datetime) -> None:
    """Raise unless the upload is pending, not expired, and its object holds exactly the declared bytes."""
    if upload.status != "pending":
        raise MediaNotPending(f"the upload is {upload.status} already")
    if now >= upload.expires_at:
        raise MediaUploadExpired("the upload expired before it was confirmed")
    if stored_size is None:
        raise MediaNotUploaded("nothing was uploaded yet")
    if stored_size != upload.size:
        raise MediaSizeMismatch(f"{stored_size} bytes were uploaded, {upload.size} declared", field="size")


def may_read(uploaded_by: str, user_id: str, *, member_of_a_room_with_it: bool) -> bool:
    """The uploader, and members of a room where the media is attached, may read it."""
    return uploaded_by == user_id or member_of_a_room_with_it


def served_inline(content_type: str) -> bool:
    """Whether downloads may display in a browser (images, audio, video), rather than save as a file."""
    return content_type not in NEVER_INLINE and content_type.startswith(_INLINE_PREFIXES)
