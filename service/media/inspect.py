"""What uploaded bytes really are: the sniffed content type, and for images their size and a thumbnail."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import filetype
from PIL import Image

from schemas.errors import MediaImageTooLarge, MediaTypeMismatch

# Pillow warns, then raises, on images above its own pixel bound; make the warning an error once, so a
# bomb is refused rather than decoded (our own, smaller bound is checked before decoding as well).
warnings.simplefilter("error", Image.DecompressionBombWarning)

# Types that have no magic number: accepted when the bytes are text (UTF-8 without NUL).
TEXT_TYPES = frozenset({"text/plain", "text/csv", "text/markdown"})
# Names filetype uses for types that clients name otherwise.
_ALIASES = {"audio/x-wav": "audio/wav", "audio/x-flac": "audio/flac", "audio/m4a": "audio/mp4",
            "video/x-m4v": "video/mp4", "image/jpg": "image/jpeg"}
# Formats Pillow may decode for width, height and a thumbnail.
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    thumbnail: bytes
    thumbnail_type: str


def sniff(data: bytes, declared: str) -> str:
    """The content type of `data` when it is the declared one; else MEDIA_TYPE_MISMATCH."""
    head = data[:_SNIFF_BYTES]
    kind = filetype.guess(head)
    if kind is None:
        if declared in TEXT_TYPES and _is_text(head):
            return declared
        raise MediaTypeMismatch(f"the uploaded bytes are not {declared}", field="content_type")
    actual = _ALIASES.get(kind.mime, kind.mime)
    if actual != _ALIASES.get(declared, declared):
        raise MediaTypeMismatch(f"the uploaded bytes are {actual}, not {declared}", field="content_type")
    return actual


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode()
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the sniffed bytes
    return True


def image_facts(data: bytes, content_type: str, *, max_pixels: int, thumbnail_pixels: int) -> ImageFacts:
    """Width, height and a thumbnail of an image; MEDIA_IMAGE_TOO_LARGE for more than `max_pixels`."""
    try:
        with Image.open(io.BytesIO(data), formats=[IMAGE_FORMATS[content_type]]) as image:
            width, height = image.size  # read from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise MediaImageTooLarge(f"images may have at most {max_pixels} pixels ({width}x{height} given)")
            image.draft("RGB", (thumbnail_pixels, thumbnail_pixels))
            image.thumbnail((thumbnail_pixels, thumbnail_pixels))
            return ImageFacts(width, height, *_encode_thumbnail(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaImageTooLarge(f"images may have at most {max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's errors for truncated or corrupt images
        raise MediaTypeMismatch(f"the image cannot be decoded: {exc}", field="content_type") from None


def _encode_thumbnail(image: Image.Image) -> tuple[bytes, str]:
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P"):
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue(), "image/jpeg"
