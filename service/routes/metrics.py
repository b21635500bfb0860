"""`GET /metrics`: the Prometheus text exposition of every worker of this server."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import NotFound
from service.observability.metrics import CONTENT_TYPE_LATEST
from service.web.endpoints import Endpoint
from service.web.request import runtime_of


async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    # Off, or served on a port of its own (ROOMLOG_METRICS_PORT): this port has no /metrics.
    if not runtime.metrics.enabled or runtime.settings.metrics_port is not None:
        raise NotFound("metrics are not served here")
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


ENDPOINTS = [
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics in the text exposition format (404 when off or "
             "served on ROOMLOG_METRICS_PORT)", errors=(NotFound,), auth="none"),
]
