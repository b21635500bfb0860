"""service/domain/media.py and service/media/inspect.py: upload limits, when confirm may proceed, sniffing, images."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from schemas.errors import (
    MediaImageTooLarge,
    MediaNotPending,
    MediaNotUploaded,
    MediaQuotaExceeded,
    MediaSizeMismatch,
    MediaTooLarge,
    MediaTypeMismatch,
    MediaTypeNotAllowed,
    MediaUploadExpired,
)
from schemas.events import MediaUploadRequested
from schemas.media import RequestUpload
from service.domain.media import MediaLimits, PendingUpload, check_confirmable, decide_upload, served_inline
from service.media.inspect import image_facts, sniff

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = MediaLimits(max_bytes=1000, allowed_types=frozenset({"image/png", "text/plain"}), quota_bytes=5000)


def request(size: int = 100, content_type: str = "image/png") -> RequestUpload:
    return RequestUpload(filename="a.png", content_type=content_type, size=size)


def decide(cmd: RequestUpload, used: int = 0) -> MediaUploadRequested:
    return decide_upload(cmd, tenant_id="tn", media_id="med_1", user_id="alice", limits=LIMITS, used_bytes=used,
                         now=NOW, expires_in=900)


def test_an_upload_within_the_limits_expires_after_the_configured_time() -> None:
    event = decide(request())
    assert event.expires_at == NOW + timedelta(seconds=900)
    assert event.object_key == "uploads/tn/med_1"


@settings(max_examples=50, deadline=None)
@given(used=st.integers(0, 6000), size=st.integers(1, 1000))
def test_the_quota_refuses_exactly_the_uploads_that_would_exceed_it(used: int, size: int) -> None:
    if used + size > LIMITS.quota_bytes:
        with pytest.raises(MediaQuotaExceeded):
            decide(request(size), used)
    else:
        decide(request(size), used)


def test_types_not_allowed_and_files_too_large_are_refused() -> None:
    with pytest.raises(MediaTypeNotAllowed):
        decide(request(content_type="text/html"))
    with pytest.raises(MediaTooLarge):
        decide(request(size=1001))


PENDING = PendingUpload(status="pending", size=10, expires_at=NOW + timedelta(minutes=15))


@pytest.mark.parametrize(("upload", "stored", "now", "error"), [
    (PENDING, None, NOW, MediaNotUploaded),
    (PENDING, 11, NOW, MediaSizeMismatch),
    (PENDING, 10, NOW + timedelta(minutes=15), MediaUploadExpired),
    (PendingUpload(status="confirmed", size=10, expires_at=PENDING.expires_at), 10, NOW, MediaNotPending),
])
def test_confirm_is_refused_unless_pending_in_time_and_of_the_declared_size(
    upload: PendingUpload, stored: int | None, now: datetime, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_confirmable(upload, stored_size=stored, now=now)


def test_confirm_of_a_pending_upload_of_the_declared_size_in_time_proceeds() -> None:
    check_confirmable(PENDING, stored_size=10, now=NOW)


def test_scripts_are_never_served_inline_and_media_are() -> None:
    assert [served_inline(t) for t in ("image/png", "video/mp4", "image/svg+xml", "text/html", "application/pdf")] \
        == [True, True, False, False, False]


def test_sniffing_accepts_the_declared_type_and_text_without_magic_and_refuses_the_rest() -> None:
    assert sniff(b"\x89PNG\r\n\x1a\n" + bytes(32), "image/png") == "image/png"
    assert sniff("héllo, wörld\n".encode(), "text/plain") == "text/plain"
    for data, declared in [(b"\x7fELF\x02\x01\x01" + bytes(64), "image/png"), (b"a\x00b", "text/plain"),
                           (b"%PDF-1.4\n", "image/png"), (b"MZ\x90\x00" + bytes(64), "text/plain")]:
        with pytest.raises(MediaTypeMismatch):
            sniff(data, declared)


def _image(size: tuple[int, int], mode: str = "RGB", fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


def test_image_facts_give_the_size_and_a_bounded_thumbnail() -> None:
    facts = image_facts(_image((1000, 250), fmt="JPEG"), "image/jpeg", max_pixels=10**6, thumbnail_pixels=100)
    assert (facts.width, facts.height, facts.thumbnail_type) == (1000, 250, "image/jpeg")
    assert Image.open(io.BytesIO(facts.thumbnail)).size == (100, 25)
    transparent = image_facts(_image((50, 50), "RGBA"), "image/png", max_pixels=10**6, thumbnail_pixels=100)
    assert transparent.thumbnail_type == "image/png"


def test_an_image_above_the_pixel_bound_is_refused_from_its_header() -> None:
    with pytest.raises(MediaImageTooLarge):
        image_facts(_image((2000, 1000)), "image/png", max_pixels=1_999_999, thumbnail_pixels=100)


def test_a_truncated_image_is_a_type_mismatch_not_a_crash() -> None:
    with pytest.raises(MediaTypeMismatch):
        image_facts(_image((200, 200))[:60], "image/png", max_pixels=10**6, thumbnail_pixels=100)
