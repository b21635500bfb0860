"""Full-text search over the messages of the caller's rooms (the `search` catch-up projection)."""

from __future__ import annotations

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from projections.search import HIGHLIGHT_DELIMITER, SearchFilters, search_messages
from schemas import api
from schemas.errors import Forbidden
from schemas.events import Attachment
from service.domain.search import decode_cursor, encode_cursor
from service.web.endpoints import Endpoint, Query, TextQuery, TimeQuery
from service.web.request import JSON, caller_may, runtime_of

SEARCH_TERMS = TextQuery("q", 'words to find; "a phrase", -excluded, or', max_length=200)
IN_ROOM = TextQuery("room_id", "only this room", max_length=64, required=False)
FROM_USER = TextQuery("from_user_id", "only messages this user sent", max_length=128, required=False)
AFTER = TimeQuery("after", "only messages sent after this instant (ISO 8601; UTC without an offset)")
BEFORE = TimeQuery("before", "only messages sent before this instant (ISO 8601; UTC without an offset)")
CURSOR = TextQuery("cursor", "next_cursor of the previous page", max_length=200, required=False)
LIMIT = Query("limit", "most results to return", minimum=1, maximum=100, default=20)

_attachments = msgspec.json.Decoder(list[Attachment])


async def search(request: Request) -> Response:
    principal = await caller_may(request, "messages.search")
    filters = SearchFilters(room_id=IN_ROOM.read(request), from_user_id=FROM_USER.read(request),
                            after=AFTER.read(request), before=BEFORE.read(request))
    cursor = CURSOR.read(request)
    older_than = decode_cursor(cursor) if cursor is not None else None
    limit = LIMIT.require(request)
    pool = await runtime_of(request).reads.for_read()
    rows, total = await search_messages(pool, principal.tenant_id, principal.user_id, SEARCH_TERMS.read(request) or "",
                                        filters, limit=limit, older_than=older_than,
                                        now=runtime_of(request).wall_clock())
    last = rows[-1] if len(rows) == limit else None
    return JSON(api.SearchResults(
        data=[_hit(r) for r in rows], total=total,
        next_cursor=encode_cursor(last["created_at"], last["message_id"]) if last is not None else None,
    ))


def _hit(row: asyncpg.Record) -> api.SearchHit:
    highlights = [h for h in row["highlights"].split(HIGHLIGHT_DELIMITER) if h.strip()]
    message = api.FoundMessage(id=row["message_id"], room_id=row["room_id"], sender_id=row["sender_id"],
                               seq=row["seq"], content=row["content"], created_at=row["created_at"],
                               edited_at=row["edited_at"])
    return api.SearchHit(
        message=message, highlights=highlights, message_id=row["message_id"], room_id=row["room_id"],
        seq=row["seq"], sender_id=row["sender_id"], created_at=row["created_at"], snippet=" … ".join(highlights),
        type=row["message_type"], attachments=_attachments.decode(row["attachments"]) if row["attachments"] else [],
    )


ENDPOINTS = [
    Endpoint("GET", "/search/messages", search,
             "Messages of the caller's rooms matching the words, newest first, filtered by room, sender and time, "
             "with the total and a cursor (indexed a moment after sending)",
             response=api.SearchResults, query=(SEARCH_TERMS, IN_ROOM, FROM_USER, AFTER, BEFORE, CURSOR, LIMIT),
             errors=(Forbidden,)),
]
