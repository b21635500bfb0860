"""Request and response plumbing shared by the routes: msgspec bodies, query numbers, the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from service.domain.authorization import Action, authorize
from service.identity.auth import Principal
from service.web.bodies import BodyDecoder

if TYPE_CHECKING:
    from service.runtime import Runtime

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[type, BodyDecoder[Any]] = {}


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
    if principal.role != "platform":  # the platform admin is nobody's colleague
        runtime.realtime.presence.seen(principal.tenant_id, principal.user_id)
    return principal


async def caller_may(request: Request, action: Action) -> Principal:
    """The authenticated caller (401), once the action table allows them `action` (403)."""
    principal = await caller(request)
    authorize(action, principal.role)
    return principal


async def body_as(request: Request, type_: type[T]) -> T:
    """Decode the JSON body into `type_`; a bad body is a 400 naming the offending field."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = BodyDecoder(type_)
    result: T = decoder.decode(await request.body())
    return result
