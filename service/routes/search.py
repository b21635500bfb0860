"""Full-text search over the messages of the caller's rooms (the `search` catch-up projection)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from projections.search import search_messages
from schemas.errors import Forbidden
from schemas.events import Attachment
from service.web.endpoints import Endpoint, Query, TextQuery
from service.web.request import JSON, caller_may, runtime_of

SEARCH_TERMS = TextQuery("q", 'words to find; "a phrase", -excluded, or', max_length=200)
IN_ROOM = TextQuery("room_id", "only this room", max_length=64, required=False)
LIMIT = Query("limit", "most results to return", minimum=1, maximum=100, default=20)


class SearchHit(msgspec.Struct):
    message_id: str
    room_id: str
    seq: int
    sender_id: str
    created_at: datetime
    snippet: str  # HTML-escaped text around the matches, each match in <mark>…</mark>
    type: str = "text"
    attachments: list[Attachment] = []


_attachments = msgspec.json.Decoder(list[Attachment])


async def search(request: Request) -> Response:
    principal = await caller_may(request, "messages.search")
    pool = await runtime_of(request).reads.for_read()
    rows = await search_messages(
        pool, principal.tenant_id, principal.user_id, SEARCH_TERMS.read(request) or "",
        room_id=IN_ROOM.read(request), limit=LIMIT.require(request), now=runtime_of(request).wall_clock(),
    )
    return JSON([SearchHit(message_id=r["message_id"], room_id=r["room_id"], seq=r["seq"], sender_id=r["sender_id"],
                           created_at=r["created_at"], snippet=r["snippet"], type=r["message_type"],
                           attachments=_attachments.decode(r["attachments"]) if r["attachments"] else [])
                 for r in rows])


ENDPOINTS = [
    Endpoint("GET", "/search/messages", search,
             "Messages of the caller's rooms matching the words, newest first (indexed a moment after sending)",
             response=list[SearchHit], query=(SEARCH_TERMS, IN_ROOM, LIMIT), errors=(Forbidden,)),
]
