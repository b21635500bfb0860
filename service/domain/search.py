"""Search paging: the cursor that resumes a search after its last hit, opaque to clients."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import msgspec

from schemas.errors import ValidationError

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(tuple[datetime, str])


def encode_cursor(created_at: datetime, message_id: str) -> str:
    """The cursor of the hits after this one (older, in the search's newest-first order)."""
    return base64.urlsafe_b64encode(_encoder.encode((created_at, message_id))).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, message_id) of a cursor `encode_cursor` made; a 400 naming `cursor` for anything else."""
    try:
        created_at, message_id = _decoder.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationError("cursor is not one this search returned", field="cursor") from None
    if created_at.tzinfo is None:
        raise ValidationError("cursor is not one this search returned", field="cursor")
    return created_at, message_id
