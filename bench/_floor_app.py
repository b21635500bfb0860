"""The two apps `bench/http_floor.py` measures: what answering a POST costs before roomlog does anything."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = msgspec.json.encode({"message_id": "msg_0123456789abcdef", "seq": 1, "created_at": "2026-01-01T00:00:00Z"})
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]
_decoder = msgspec.json.Decoder(dict[str, Any])


async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Bare ASGI: read the body, decode it, answer 201 with a fixed JSON body."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    _decoder.decode(body)
    await send({"type": "http.response.start", "status": 201, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


async def _send_message(request: Request) -> Response:
    _decoder.decode(await request.body())
    return Response(_BODY, status_code=201, media_type="application/json")


starlette = Starlette(routes=[Route("/rooms/{room_id}/messages", _send_message, methods=["POST"])])
