"""Media uploads (seed 004): a presigned upload URL, confirm, and the metadata with download URLs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import (
    Forbidden,
    MediaChecksumMismatch,
    MediaImageTooLarge,
    MediaNotFound,
    MediaNotPending,
    MediaNotUploaded,
    MediaQuotaExceeded,
    MediaSizeMismatch,
    MediaTooLarge,
    MediaTypeMismatch,
    MediaTypeNotAllowed,
    MediaUnavailable,
    MediaUploadExpired,
    NotAMember,
    RoomNotFound,
)
from schemas.media import ConfirmUpload, Media, RequestUpload, UploadUrl
from service.commands import media
from service.commands.rooms import require_member
from service.web.endpoints import Endpoint, Link
from service.web.request import JSON, body_as, caller_may, runtime_of


async def post_upload_url(request: Request) -> Response:
    principal = await caller_may(request, "media.upload")
    cmd = await body_as(request, RequestUpload)
    if cmd.room_id is not None:
        await require_member(request, principal, cmd.room_id)
    runtime = runtime_of(request)
    return JSON(await media.request_upload(runtime, principal, cmd, now=runtime.wall_clock()), status_code=201)


async def post_confirm(request: Request) -> Response:
    principal = await caller_may(request, "media.upload")
    cmd = await body_as(request, ConfirmUpload)
    runtime = runtime_of(request)
    return JSON(await media.confirm_upload(runtime, principal, request.path_params["media_id"], cmd,
                                           now=runtime.wall_clock()))


async def get_media(request: Request) -> Response:
    principal = await caller_may(request, "media.read")
    return JSON(await media.get_media(runtime_of(request), principal, request.path_params["media_id"]))


ENDPOINTS = [
    Endpoint("POST", "/media/upload-url", post_upload_url,
             "A presigned PUT for one file of this size and content type, valid for a few minutes",
             body=RequestUpload, response=UploadUrl, status=201,
             errors=(Forbidden, MediaTypeNotAllowed, MediaTooLarge, MediaQuotaExceeded, RoomNotFound, NotAMember,
                     MediaUnavailable),
             links=(Link("POST", "/media/{media_id}/confirm"), Link("GET", "/media/{media_id}"))),
    Endpoint("POST", "/media/{media_id}/confirm", post_confirm,
             "Check the uploaded bytes (size, sha256, real content type, image size and thumbnail) and record them;"
             " a wrong upload is removed",
             body=ConfirmUpload, response=Media,
             errors=(Forbidden, MediaNotFound, MediaNotUploaded, MediaSizeMismatch, MediaTypeMismatch,
                     MediaChecksumMismatch, MediaImageTooLarge, MediaUploadExpired, MediaNotPending, MediaUnavailable),
             links=(Link("GET", "/media/{media_id}"),)),
    Endpoint("GET", "/media/{media_id}", get_media,
             "Media metadata with short-lived download URLs (the uploader, and members of rooms it is attached in)",
             response=Media, errors=(Forbidden, MediaNotFound, MediaUnavailable)),
]
