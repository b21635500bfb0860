"""GET /console/…: the web console's static files (clients/console) and the JavaScript SDK it is built on.

Each file is one endpoint without authentication (the console signs in from the browser, like any other
client); the files are read once at start-up, so a request only sends bytes already in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import NotFound
from service.web.endpoints import Endpoint

# The repository's clients/ (a checkout), or where an installed service was given them (the container image).
CLIENTS = Path(os.environ.get("ROOMLOG_CLIENTS_DIR") or Path(__file__).resolve().parents[2] / "clients")
# URL path under /console/ -> file of the repository.
FILES = {
    "": CLIENTS / "console" / "index.html",
    "app.js": CLIENTS / "console" / "app.js",
    "style.css": CLIENTS / "console" / "style.css",
    "sdk/roomlog.js": CLIENTS / "js" / "roomlog.js",
    "sdk/api.gen.js": CLIENTS / "js" / "api.gen.js",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# The console talks only to the server that served it; media thumbnails may come from the object store.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: http: https:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


def _file_endpoint(name: str, source: Path) -> Endpoint:
    # An installation without the repository's clients/ folder (a wheel) declares the same routes, answering 404.
    body = source.read_bytes() if source.exists() else None
    media_type = MEDIA_TYPES[source.suffix]

    async def serve(request: Request) -> Response:
        if body is None:
            raise NotFound("the console is not part of this installation (it is served from a source checkout)")
        return Response(body, media_type=media_type, headers=HEADERS)

    return Endpoint("GET", f"/console/{name}", serve, f"The web console: {name or 'its page'}", auth="none",
                    errors=(NotFound,))


def console_endpoints() -> list[Endpoint]:
    """One endpoint per console file, each serving the file as it was at start-up."""
    return [_file_endpoint(name, source) for name, source in FILES.items()]
