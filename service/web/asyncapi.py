"""The WebSocket protocol as an AsyncAPI 3.0 document, generated from the frame Structs of schemas/realtime.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

import msgspec

from schemas.notifications import NotificationFrame
from schemas.realtime import ClientFrame, ServerFrames
from schemas.support import SupportFrame

CLIENT_FRAMES: tuple[type[msgspec.Struct], ...] = get_args(ClientFrame)
SERVER_FRAMES: tuple[type[msgspec.Struct], ...] = (*ServerFrames, NotificationFrame, SupportFrame)
_CHANNEL = "realtime"
_TOKEN = {
    "type": "object",
    "properties": {"token": {"type": "string",
                             "description": "A WebSocket token from POST /tokens or GET /messaging/token"}},
    "required": ["token"],
}


def asyncapi(*, title: str, version: str, close_codes: Mapping[int, str]) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of `/ws`: the client's and the server's frames, the token, the close codes."""
    frames = [*CLIENT_FRAMES, *SERVER_FRAMES]
    _, schemas = msgspec.json.schema_components(frames, ref_template="#/components/schemas/{name}")
    messages = {f.__name__: _message(f) for f in frames}
    channel_ref = {"$ref": f"#/channels/{_CHANNEL}"}
    codes = "; ".join(f"{code}: {meaning}" for code, meaning in sorted(close_codes.items()))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version,
                 "description": "JSON text frames, each an object with a `type`. A bad or expired token is refused "
                                "with HTTP 401 before the upgrade."},
        "defaultContentType": "application/json",
        "channels": {_CHANNEL: {
            "address": "/ws",
            "description": f"One connection per client. Close codes: {codes}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            "bindings": {"ws": {"method": "GET", "query": _TOKEN, "bindingVersion": "0.1.0"}},
            "x-close-codes": {str(code): meaning for code, meaning in sorted(close_codes.items())},
        }},
        "operations": {
            "receiveClientFrames": _operation("receive", channel_ref, CLIENT_FRAMES,
                                              "What a client sends: sync (resume), send, ack, read, typing, ping"),
            "sendServerFrames": _operation("send", channel_ref, SERVER_FRAMES,
                                           "What the server sends: room events, replies, receipts, typing, presence, "
                                           "notifications, resync and shutdown"),
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def frame_type(frame: type[msgspec.Struct]) -> str | None:
    """The `type` a frame carries: a client frame's tag, a server frame's fixed type (None when it varies)."""
    tag = frame.__struct_config__.tag
    if isinstance(tag, str):
        return tag
    default = next((f.default for f in msgspec.structs.fields(frame) if f.name == "type"), None)
    return default if isinstance(default, str) else None


def _message(frame: type[msgspec.Struct]) -> dict[str, Any]:
    message: dict[str, Any] = {"name": frame_type(frame) or frame.__name__,
                               "payload": {"$ref": f"#/components/schemas/{frame.__name__}"}}
    if frame.__doc__:
        message["summary"] = frame.__doc__.strip().splitlines()[0]
    return message


def _operation(action: str, channel: dict[str, str], frames: Sequence[type[msgspec.Struct]],
               summary: str) -> dict[str, Any]:
    return {"action": action, "channel": channel, "summary": summary,
            "messages": [{"$ref": f"#/channels/{_CHANNEL}/messages/{f.__name__}"} for f in frames]}
