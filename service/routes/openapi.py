"""GET /openapi.json: the API description, generated from the endpoint declarations at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.web.endpoints import Endpoint, openapi
from service.web.request import JSON


def openapi_endpoint(endpoints: Sequence[Endpoint], *, version: str) -> Endpoint:
    """The endpoint serving the document for `endpoints` (itself included), built once at start-up."""
    document: dict[str, Any] = {}

    async def serve(request: Request) -> Response:
        return JSON(document)

    own = Endpoint("GET", "/openapi.json", serve, "This API description (OpenAPI 3.1)", auth="none")
    document.update(openapi([*endpoints, own], title="roomlog", version=version))
    return own
