"""Request and response plumbing shared by the routes: msgspec bodies, query numbers, the caller."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from schemas.errors import ValidationError
from service.auth import Principal
from service.authorization import authorize

if TYPE_CHECKING:
    from service.runtime import Runtime

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}
_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED = re.compile(r"field `([^`]+)`")


class JSON(Response):
    """A JSON response encoded by msgspec."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def runtime_of(request: Request) -> Runtime:
    """The Runtime the app was started with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def caller(request: Request) -> Principal:
    """Authenticate the request (401 on failure), remember who it is, and count it against the tenant's limit."""
    runtime = runtime_of(request)
    principal = await runtime.auth.authenticate(request.headers)
    state = request.scope.setdefault("state", {})
    state["principal"] = principal
    await runtime.limiter.admit_request(principal, state)  # 429 before any other work
    return principal


async def caller_may(request: Request, action: str) -> Principal:
    """The authenticated caller (401), once the action table allows them `action` (403)."""
    principal = await caller(request)
    authorize(action, principal.role)
    return principal


async def body_as(request: Request, type_: type[T]) -> T:
    """Decode the JSON body into `type_`; a bad body is a 400 naming the offending field."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    raw = await request.body()
    try:
        return _decode(decoder, type_, raw)
    except msgspec.ValidationError as exc:
        raise ValidationError(_describe(str(exc)), field=field_of(str(exc))) from None
    except msgspec.DecodeError:
        raise ValidationError("request body is not valid JSON") from None


def _decode(decoder: msgspec.json.Decoder[T], type_: type[T], raw: bytes) -> T:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise
    # JSON Schema counts 2.0 as the integer 2, so a body the description admits is not refused for that spelling;
    # only a body that failed on a float takes this slower path.
    return msgspec.convert(_whole_floats_as_ints(msgspec.json.decode(raw)), type_)


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def field_of(message: str) -> str | None:
    """The field a msgspec validation message is about (`$.members[0]` → `members[0]`)."""
    named = _NAMED.search(message)
    path = _PATH.search(message)
    parts = [p for p in ((path.group(1) if path else ""), (named.group(1) if named else "")) if p]
    return ".".join(parts) or None


def _describe(message: str) -> str:
    return message.split(" - at `", 1)[0]
