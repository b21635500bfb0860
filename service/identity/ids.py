"""Identifiers the service makes: random, URL-safe, with a prefix that says what they name."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier such as `room_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(10)}"
