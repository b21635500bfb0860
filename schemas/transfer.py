"""The export file: JSON Lines of one tenant's log, a header first and a trailer with counts and a checksum last."""

from __future__ import annotations

from datetime import datetime

import msgspec

# Raised when the shape of a line changes; an importer refuses files of another version.
FORMAT_VERSION = 1


class _Line(msgspec.Struct, tag_field="kind", forbid_unknown_fields=True):
    """Base of every line of an export file; the tag says which kind it is."""


class ExportHeader(_Line, tag="header"):
    """What the file holds: the tenant's events after tenant position `since`, up to `until` (inclusive).

    A tenant position counts the tenant's own events in log order (1, 2, 3 …), so it is the same in
    every database that holds the tenant, whatever other tenants share the log.
    """

    format: int
    tenant_id: str
    tenant_name: str
    since: int
    until: int


class ExportedEvent(_Line, tag="event"):
    """One event as the log stores it: its stream and seq, when it was written, its payload and metadata."""

    stream_id: str
    seq: int
    created_at: datetime
    type: str
    data: msgspec.Raw
    metadata: msgspec.Raw
    idempotency_key: str | None = None


class ExportTrailer(_Line, tag="trailer"):
    """The file's end: how many events and streams it holds and the SHA-256 of every line before this one."""

    events: int
    streams: int
    sha256: str


ExportLine = ExportHeader | ExportedEvent | ExportTrailer
