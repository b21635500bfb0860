"""(being written)"""

from __future__ import annotations

from service.endpoints import Endpoint

ENDPOINTS: list[Endpoint] = []
