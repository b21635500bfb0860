"""Event schema versions and the upcasters that turn a stored older payload into the current shape on read.

A stored payload carries its version as `"v"`; a payload without one is version 1 (every event written
before versions existed, and every event of a type that never changed). `encode_event` stamps the current
version of a type once it is above 1. Every read of the log (`decode_event`, the relay's wire form,
replay's SQL over `new_events`) goes through `upcast`, so projections and clients only see current shapes.

To change the shape of an event type: bump its struct in schemas/events.py, set its version here in
`CURRENT_VERSIONS` and register one upcaster for the step from the version before — a pure function
from the old payload (a dict) to the next one. Upcasters never touch the stored rows. Any change but adding
a field with a default needs a version: WebSocket catch-up (service/realtime/catch_up.py) hands out the stored
JSON of events at their type's current version as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

# type -> its current version (types not listed are at version 1)
CURRENT_VERSIONS: dict[str, int] = {}
# (type, from_version) -> the step to from_version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

VERSION_KEY = "v"


class _Versioned(msgspec.Struct):
    type: str
    v: int = 1


_versioned = msgspec.json.Decoder(_Versioned)
_payload = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def current_version(event_type: str) -> int:
    """The version new events of this type are written with."""
    return CURRENT_VERSIONS.get(event_type, 1)


def upcast(payload: Payload) -> Payload:
    """The payload in its type's current shape (itself when it is current), one registered step at a time."""
    event_type = payload["type"]
    version = payload.get(VERSION_KEY, 1)
    target = current_version(event_type)
    while version < target:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise LookupError(f"no upcaster for {event_type} version {version}")
        payload = step(payload)
        version += 1
    payload[VERSION_KEY] = target
    return payload


def upcast_json(data: str | bytes) -> str | bytes:
    """Stored JSON in its current shape: the same text when nothing needs upcasting (no parse at all then)."""
    if not CURRENT_VERSIONS:
        return data
    head = _versioned.decode(data)
    if head.v >= current_version(head.type):
        return data
    return _encoder.encode(upcast(_payload.decode(data)))


def needs_upcasting(event_type: str) -> bool:
    """Whether stored events of this type may be in an older shape than the current one."""
    return current_version(event_type) > 1


@contextmanager
def registered(event_type: str, steps: dict[int, Upcaster]) -> Iterator[None]:
    """Make `steps` (from_version -> upcaster) the type's history for a while, then restore (for tests)."""
    saved_versions, saved_steps = dict(CURRENT_VERSIONS), dict(UPCASTERS)
    CURRENT_VERSIONS[event_type] = max(steps) + 1
    UPCASTERS.update({(event_type, v): step for v, step in steps.items()})
    try:
        yield
    finally:
        CURRENT_VERSIONS.clear()
        CURRENT_VERSIONS.update(saved_versions)
        UPCASTERS.clear()
        UPCASTERS.update(saved_steps)
