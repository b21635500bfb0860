"""GET /asyncapi.json: the WebSocket protocol's description, generated from the frame Structs at start-up."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from service.realtime.gateway import CLOSE_CODES
from service.web.asyncapi import asyncapi
from service.web.endpoints import Endpoint
from service.web.request import JSON


def asyncapi_endpoint(*, version: str) -> Endpoint:
    """The endpoint serving the AsyncAPI 3.0 document of `/ws`; built once."""
    document = asyncapi(title="roomlog realtime", version=version, close_codes=CLOSE_CODES)

    async def serve(request: Request) -> Response:
        return JSON(document)

    return Endpoint("GET", "/asyncapi.json", serve, "The WebSocket protocol of /ws (AsyncAPI 3.0)", auth="none")
