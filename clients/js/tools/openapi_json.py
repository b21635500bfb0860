"""Print roomlog's /openapi.json without starting a server (the generator's input): `python openapi_json.py`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from starlette.requests import Request

from service.app import ENDPOINTS


async def main() -> None:
    """Call the /openapi.json endpoint's handler and write its body to stdout."""
    [endpoint] = [e for e in ENDPOINTS if e.path == "/openapi.json"]
    scope = {"type": "http", "method": "GET", "path": "/openapi.json", "headers": []}
    response = await endpoint.handler(Request(scope))
    sys.stdout.buffer.write(bytes(response.body))


if __name__ == "__main__":
    asyncio.run(main())
