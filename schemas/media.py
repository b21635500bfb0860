"""Media uploads: request and response bodies of /media."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

# A file name as the user had it: no path separators or control characters (it is echoed in a
# Content-Disposition header on download).
Filename = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f\x7f]+$")]
ContentType = Annotated[
    str, msgspec.Meta(min_length=3, max_length=127, pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$"),
]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
MediaStatus = Literal["pending", "confirmed"]


class RequestUpload(msgspec.Struct, forbid_unknown_fields=True):
    filename: Filename
    content_type: ContentType
    size: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    room_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class UploadUrl(msgspec.Struct):
    """Where to PUT the bytes: the presigned URL, the method and the headers it was signed with."""

    media_id: str
    upload_url: str
    method: Literal["PUT"]
    headers: dict[str, str]
    expires_at: datetime


class ConfirmUpload(msgspec.Struct, forbid_unknown_fields=True):
    # The client's own sha256 of the bytes it uploaded; when given, the stored object must match it.
    sha256: Sha256 | None = None


class Media(msgspec.Struct, omit_defaults=True):
    media_id: str
    filename: str
    content_type: str
    size: int
    status: MediaStatus
    created_at: datetime
    uploaded_by: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    cdn_url: str | None = None
    thumbnail_url: str | None = None
    room_id: str | None = None


LimitField = Literal["max_bytes", "allowed_types", "quota_bytes"]


class SetMediaLimits(msgspec.Struct, forbid_unknown_fields=True):
    """A tenant's own limits; a field left out or null follows the service's default (ROOMLOG_MEDIA_*)."""

    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=2**53)] | None = None
    allowed_types: Annotated[list[ContentType], msgspec.Meta(min_length=1, max_length=200)] | None = None
    quota_bytes: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None  # 0: no quota


class MediaLimitsView(msgspec.Struct):
    """The limits that apply to a tenant's uploads, and which of them are its own (the rest: the defaults)."""

    tenant_id: str
    max_bytes: int
    allowed_types: list[str]
    quota_bytes: int
    overridden: list[LimitField]
    updated_at: datetime | None
