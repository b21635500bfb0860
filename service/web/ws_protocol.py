"""uvicorn's WebSocket protocol plus an ASGI extension that drops the connection at once.

ASGI can only close a socket with a close frame, and uvicorn writes that frame only once the send buffer
has room: a client that stopped reading would keep its connection (and everything buffered for it) for
ever. The `roomlog.abort` extension lets the gateway reset such a connection instead.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

ABORT_EXTENSION = "roomlog.abort"
# SO_LINGER on, 0 seconds: close() resets the connection and frees the unsent data, where a plain close
# would leave the kernel trying to deliver it to a peer that never reads.
_RESET = struct.pack("ii", 1, 0)


class AbortableWebSocketProtocol(WebSocketsSansIOProtocol):
    """Offers `scope["extensions"]["roomlog.abort"]["abort"]()`: reset the TCP connection now."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The application task was created but has not run yet: the scope can still be extended.
        self.scope["extensions"][ABORT_EXTENSION] = {"abort": self._reset}

    def _reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.transport.abort()
