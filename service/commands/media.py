"""Uploads: request a presigned URL, confirm what arrived, read the metadata with short-lived download URLs."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from projections.media import attached_in_a_room_of, fetch_media, stored_bytes
from projections.media_limits import fetch_media_limits
from projections.streams import media_stream
from schemas.config import Settings
from schemas.errors import (
    MediaChecksumMismatch,
    MediaNotFound,
    MediaNotPending,
    MediaNotUploaded,
    MediaUnavailable,
    RoomlogError,
    WrongExpectedSeq,
)
from schemas.events import Event, MediaConfirmed, MediaRejected
from schemas.media import ConfirmUpload, Media, RequestUpload, UploadUrl
from service.commands.metadata import metadata_for
from service.domain.media import (
    MediaLimits,
    PendingUpload,
    check_confirmable,
    decide_upload,
    effective_limits,
    may_read,
    media_key,
    served_inline,
    thumbnail_key,
)
from service.identity.auth import Principal
from service.identity.ids import new_id
from service.media.inspect import IMAGE_FORMATS, image_facts, sniff
from service.media.store import ObjectStore

if TYPE_CHECKING:
    from service.runtime import Runtime


def limits_of(settings: Settings) -> MediaLimits:
    """The limits every tenant has (the settings' defaults)."""
    return MediaLimits(max_bytes=settings.media_max_bytes, allowed_types=frozenset(settings.media_allowed_types),
                       quota_bytes=settings.media_quota_bytes)


async def tenant_limits(runtime: Runtime, tenant_id: str) -> MediaLimits:
    """The limits of the tenant's uploads: its own (PUT /admin/tenants/{id}/media-limits), else the defaults."""
    own = await fetch_media_limits(runtime.pool, tenant_id)
    defaults = limits_of(runtime.settings)
    if own is None:
        return defaults
    return effective_limits(defaults, max_bytes=own["max_bytes"], quota_bytes=own["quota_bytes"],
                            allowed_types=None if own["allowed_types"] is None else list(own["allowed_types"]))


def store_of(runtime: Runtime) -> ObjectStore:
    """The runtime's object store; 503 MEDIA_UNAVAILABLE when it has none."""
    if runtime.media is None:
        raise MediaUnavailable("no object store is configured")
    return runtime.media


async def request_upload(runtime: Runtime, principal: Principal, cmd: RequestUpload, *, now: datetime) -> UploadUrl:
    """Record the upload, then hand out a presigned PUT bound to its size and content type."""
    store = store_of(runtime)
    settings = runtime.settings
    media_id = new_id("med")
    used = await stored_bytes(runtime.pool, principal.tenant_id, now=now)
    event = decide_upload(cmd, tenant_id=principal.tenant_id, media_id=media_id, user_id=principal.user_id,
                          limits=await tenant_limits(runtime, principal.tenant_id), used_bytes=used, now=now,
                          expires_in=settings.media_upload_url_seconds)
    await store.ensure_bucket()  # before the record, so a store that is down leaves no pending upload
    # Recorded before any URL exists: every object a URL can create has an upload the expiry job knows of.
    await runtime.appender.append(media_stream(principal.tenant_id, media_id), [event], tenant_id=principal.tenant_id,
                                  metadata=metadata_for(principal), expected_seq=0, create_stream=True)
    url = await store.presign_put(event.object_key, content_type=cmd.content_type, size=cmd.size,
                                  expires_in=settings.media_upload_url_seconds)
    return UploadUrl(media_id=media_id, upload_url=url, method="PUT",
                     headers={"Content-Type": cmd.content_type, "Content-Length": str(cmd.size)},
                     expires_at=event.expires_at)


async def confirm_upload(
    runtime: Runtime, principal: Principal, media_id: str, cmd: ConfirmUpload, *, now: datetime
) -> Media:
    """Check the uploaded object and record what it is; a wrong one is removed and recorded as rejected."""
    store = store_of(runtime)
    row = await fetch_media(runtime.pool, principal.tenant_id, media_id)
    if row is None or row["uploaded_by"] != principal.user_id:
        raise MediaNotFound("media not found", field="media_id")
    upload = PendingUpload(status=row["status"], size=row["size"], expires_at=row["expires_at"])
    try:
        check_confirmable(upload, stored_size=await store.size_of(row["object_key"]), now=now)
        event = await _inspect(runtime, store, row, cmd)
    except (MediaNotPending, MediaNotUploaded, MediaUnavailable):  # nothing to remove: the upload may go on
        raise
    except RoomlogError as error:
        await store.delete(row["object_key"])
        await _record(runtime, principal, media_id, MediaRejected(media_id=media_id, code=error.code,
                                                                   reason=error.message))
        raise
    try:
        await _record(runtime, principal, media_id, event)
    except MediaNotPending:
        await _drop_unless_recorded(runtime, store, principal, event)
        raise
    await store.delete(row["object_key"])
    confirmed = await _fetch(runtime, principal, media_id)
    runtime.confirmed_media.remember(confirmed)  # the send that attaches it needs no lookup on this instance
    return await media_view(runtime, confirmed)


async def _inspect(runtime: Runtime, store: ObjectStore, row: asyncpg.Record, cmd: ConfirmUpload) -> MediaConfirmed:
    """Hash and sniff the bytes; store them (and an image's thumbnail) under their hash, away from the upload key."""
    settings = runtime.settings
    data = await store.read(row["object_key"])
    if data is None:  # a racing confirm took it away after our size check
        raise MediaNotUploaded("nothing was uploaded yet")
    sha256 = hashlib.sha256(data).hexdigest()
    if cmd.sha256 is not None and cmd.sha256 != sha256:
        raise MediaChecksumMismatch("the uploaded bytes have another sha256", field="sha256")
    content_type = sniff(data, row["declared_type"])
    tenant_id, media_id = row["tenant_id"], row["media_id"]
    width = height = thumb_key = None
    if content_type in IMAGE_FORMATS:
        facts = await asyncio.to_thread(image_facts, data, content_type, max_pixels=settings.media_max_image_pixels,
                                        thumbnail_pixels=settings.media_thumbnail_pixels)
        width, height = facts.width, facts.height
        thumb_key = thumbnail_key(tenant_id, media_id, sha256)
        await store.put(thumb_key, facts.thumbnail, content_type=facts.thumbnail_type)
    await store.put(media_key(tenant_id, media_id, sha256), data, content_type=content_type)
    return MediaConfirmed(media_id=media_id, content_type=content_type, sha256=sha256, size=len(data), width=width,
                          height=height, thumbnail_key=thumb_key)


async def _drop_unless_recorded(
    runtime: Runtime, store: ObjectStore, principal: Principal, event: MediaConfirmed
) -> None:
    """After losing the race to record the outcome: remove what this confirm stored unless the winner kept it."""
    now = await fetch_media(runtime.pool, principal.tenant_id, event.media_id)
    if now is not None and now["status"] == "confirmed" and now["sha256"] == event.sha256:
        return
    await store.delete(media_key(principal.tenant_id, event.media_id, event.sha256))
    if event.thumbnail_key is not None:
        await store.delete(event.thumbnail_key)


async def _record(runtime: Runtime, principal: Principal, media_id: str, event: Event) -> None:
    # expected_seq=1: only one confirm (or rejection) follows the request, however many race.
    try:
        await runtime.appender.append(media_stream(principal.tenant_id, media_id), [event],
                                      tenant_id=principal.tenant_id, metadata=metadata_for(principal),
                                      expected_seq=1)
    except WrongExpectedSeq:
        raise MediaNotPending("the upload was confirmed or rejected meanwhile") from None


async def get_media(runtime: Runtime, principal: Principal, media_id: str) -> Media:
    """The media's metadata with presigned download URLs; 404 for anyone who may not read it."""
    row = await _fetch(runtime, principal, media_id)
    shared = row["uploaded_by"] != principal.user_id and await attached_in_a_room_of(
        runtime.pool, principal.tenant_id, media_id, principal.user_id)
    if not may_read(row["uploaded_by"], principal.user_id, member_of_a_room_with_it=shared):
        raise MediaNotFound("media not found", field="media_id")
    return await media_view(runtime, row)


async def _fetch(runtime: Runtime, principal: Principal, media_id: str) -> asyncpg.Record:
    row = await fetch_media(runtime.pool, principal.tenant_id, media_id)
    if row is None or row["status"] in ("rejected", "removed"):
        raise MediaNotFound("media not found", field="media_id")
    return row


async def media_view(runtime: Runtime, row: asyncpg.Record) -> Media:
    """The API view of a media row; confirmed media get download URLs valid for a few minutes."""
    view = Media(media_id=row["media_id"], filename=row["filename"], content_type=row["content_type"]
                 or row["declared_type"], size=row["size"], status=row["status"], created_at=row["created_at"],
                 uploaded_by=row["uploaded_by"], sha256=row["sha256"], width=row["width"], height=row["height"],
                 room_id=row["room_id"])
    if row["status"] != "confirmed":
        return view
    store, expires = store_of(runtime), runtime.settings.media_download_url_seconds
    key = media_key(row["tenant_id"], row["media_id"], row["sha256"])
    view.cdn_url = await store.presign_get(key, content_type=row["content_type"], filename=row["filename"],
                                           inline=served_inline(row["content_type"]), expires_in=expires)
    if row["thumbnail_key"] is not None:
        view.thumbnail_url = await store.presign_get(row["thumbnail_key"], content_type=None,
                                                     filename=row["filename"], inline=True, expires_in=expires)
    return view
