"""Endpoints declared once — method, path, handler, bodies, errors — and turned into routes and OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from schemas.api import INT64_MAX
from schemas.errors import (
    AuthenticationError,
    ErrorBody,
    PayloadTooLarge,
    RateLimited,
    RoomlogError,
    Unavailable,
    ValidationError,
)

Handler = Callable[[Request], Awaitable[Response]]
# tenant: a user's bearer JWT, or a tenant API key with X-User-Id (or the platform key where allowed).
Auth = Literal["tenant", "none"]


@dataclass(frozen=True)
class Query:
    """An integer query parameter: read and validated by handlers, described by the OpenAPI document."""

    name: str
    description: str
    minimum: int = 0
    maximum: int | None = None
    default: int | None = None

    def read(self, request: Request) -> int | None:
        """The parameter's value within [minimum, maximum], the default when absent; else a 400 naming it."""
        raw = request.query_params.get(self.name)
        if raw is None or raw == "":
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError(f"{self.name} must be an integer", field=self.name) from None
        if not self.minimum <= value <= self.upper:
            raise ValidationError(f"{self.name} must be between {self.minimum} and {self.upper}", field=self.name)
        return value

    @property
    def upper(self) -> int:
        """The largest accepted value: `maximum`, else what PostgreSQL's bigint holds."""
        return self.maximum if self.maximum is not None else INT64_MAX

    def require(self, request: Request) -> int:
        """`read` for a parameter that has a default, so the value is never None."""
        value = self.read(request)
        assert value is not None, f"{self.name} has no default"
        return value


@dataclass(frozen=True)
class TextQuery:
    """A required text query parameter (e.g. a search term), validated and described like `Query`."""

    name: str
    description: str
    min_length: int = 1
    max_length: int = 100
    required: bool = True

    def read(self, request: Request) -> str | None:
        """The stripped value (None when optional and absent); a 400 naming it when missing, too long or with NUL."""
        value = request.query_params.get(self.name, "").strip()
        if not value and not self.required:
            return None
        if not self.min_length <= len(value) <= self.max_length or "\x00" in value:
            raise ValidationError(
                f"{self.name} must be {self.min_length} to {self.max_length} characters (no NUL)", field=self.name
            )
        return value


@dataclass(frozen=True)
class TimeQuery:
    """An optional ISO 8601 date-time query parameter (UTC when it names no offset), described like `Query`."""

    name: str
    description: str

    def read(self, request: Request) -> datetime | None:
        """The instant named (None when absent); a 400 naming the parameter when it is not ISO 8601."""
        raw = request.query_params.get(self.name, "").strip()
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise ValidationError(f"{self.name} must be an ISO 8601 date-time", field=self.name) from None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ChoiceQuery:
    """An optional query parameter taking one of a few words (`type=channel`, `archived=true`)."""

    name: str
    description: str
    choices: tuple[str, ...]
    default: str | None = None

    def read(self, request: Request) -> str | None:
        """The value, the default when absent; a 400 naming it when it is not one of the choices."""
        value = request.query_params.get(self.name)
        if value is None or value == "":
            return self.default
        if value not in self.choices:
            raise ValidationError(f"{self.name} must be one of {', '.join(self.choices)}", field=self.name)
        return value

    def flag(self, request: Request) -> bool | None:
        """A true/false parameter as a bool (None when absent and without a default)."""
        value = self.read(request)
        return None if value is None else value == "true"


@dataclass(frozen=True)
class Link:
    """An operation a success leads to (an OpenAPI link), named by its method and path.

    Each path parameter of the target comes from the same-named path parameter of the request when it has
    one, else from the same-named field of the response body; `parameters` overrides either (a runtime
    expression such as `$request.body#/topic`).
    """

    method: str
    path: str
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """One HTTP operation: its handler plus everything the API description says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: Any = None
    response: Any = None
    status: int = 200
    errors: tuple[type[RoomlogError], ...] = ()
    query: tuple[Query | TextQuery | TimeQuery | ChoiceQuery, ...] = ()
    auth: Auth = "tenant"
    headers: tuple[str, ...] = field(default=())
    links: tuple[Link, ...] = ()


class HandlerApp:
    """The ASGI app of one handler: it sends the handler's response.

    Unlike Starlette's `request_response`, it wraps no exception handling of its own around the handler:
    errors reach the app's ExceptionMiddleware, which holds the same handlers, one layer fewer per request.
    """

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """Starlette routes for the endpoints."""
    return [Route(e.path, HandlerApp(e.handler), methods=[e.method], name=e.handler.__name__) for e in endpoints]


# Every authenticated call can fail these ways; the spec lists them on each operation.
_COMMON_ERRORS: tuple[type[RoomlogError], ...] = (ValidationError, PayloadTooLarge, RateLimited, Unavailable)


def openapi(endpoints: Sequence[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document generated from the endpoints' msgspec types."""
    types: list[Any] = [ErrorBody]
    for e in endpoints:
        types += [t for t in (e.body, e.response) if t is not None]
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip([id(t) for t in types], schemas, strict=True))
    by_route = {(e.method, e.path): e for e in endpoints}
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation = _operation(e, schema_of)
        if e.links:
            operation["responses"][str(e.status)]["links"] = _links(e, by_route)
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "An access token from POST /auth/login or /auth/refresh."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                           "description": "The tenant's API key; pair it with X-User-Id."},
                "userId": {"type": "apiKey", "in": "header", "name": "X-User-Id",
                           "description": "The acting user (1-128 characters, no spaces or '/')."},
            },
        },
    }


def _operation(e: Endpoint, schema_of: dict[int, Any]) -> dict[str, Any]:
    error_ref = schema_of[id(ErrorBody)]
    responses: dict[str, Any] = {
        str(e.status): {"description": "success"}
        | ({"content": {"application/json": {"schema": schema_of[id(e.response)]}}} if e.response else {})
    }
    errors = list(e.errors) + list(_COMMON_ERRORS) + ([AuthenticationError] if e.auth == "tenant" else [])
    for status, codes in sorted(_by_status(errors).items()):
        responses[str(status)] = {
            "description": "error: " + ", ".join(sorted(codes)),
            "content": {"application/json": {"schema": error_ref}},
        }
    operation: dict[str, Any] = {
        "summary": e.summary,
        "operationId": operation_id(e),
        "responses": responses,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(e.path)
        ] + [_query_param(q) for q in e.query],
    }
    if e.body is not None:
        content = {"application/json": {"schema": schema_of[id(e.body)]}}
        operation["requestBody"] = {"required": True, "content": content}
    if e.auth == "tenant":
        operation["security"] = [{"bearer": []}, {"apiKey": [], "userId": []}]
    return operation


def operation_id(e: Endpoint) -> str:
    """The endpoint's operationId: its method and path, `POST /rooms/{room_id}/read` → `post_rooms_room_id_read`."""
    return f"{e.method.lower()}_{e.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"


def _links(e: Endpoint, by_route: Mapping[tuple[str, str], Endpoint]) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for link in e.links:
        target = by_route.get((link.method, link.path))
        if target is None:
            raise LookupError(f"{e.method} {e.path} links to {link.method} {link.path}, which is not declared")
        parameters = {name: link.parameters.get(name) or _source(e, name) for name in _path_params(target.path)}
        links[target.handler.__name__] = {"operationId": operation_id(target), "parameters": parameters}
    return links


def _source(e: Endpoint, name: str) -> str:
    if name in _path_params(e.path):
        return f"$request.path.{name}"
    fields = {f.name for f in msgspec.structs.fields(e.response)} if _is_struct(e.response) else set()
    if name not in fields:
        raise LookupError(f"{e.method} {e.path} answers no {name!r} for a link to take")
    return f"$response.body#/{name}"


def _is_struct(type_: Any) -> bool:
    return isinstance(type_, type) and issubclass(type_, msgspec.Struct)


def _by_status(errors: Sequence[type[RoomlogError]]) -> dict[int, set[str]]:
    grouped: dict[int, set[str]] = {}
    for error in errors:
        grouped.setdefault(error.status, set()).add(error.code)
    return grouped


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _query_param(q: Query | TextQuery | TimeQuery | ChoiceQuery) -> dict[str, Any]:
    if isinstance(q, TimeQuery):
        timestamp = {"type": "string", "format": "date-time"}
        return {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": timestamp}
    if isinstance(q, ChoiceQuery):
        choice: dict[str, Any] = {"type": "string", "enum": list(q.choices)}
        if q.default is not None:
            choice["default"] = q.default
        return {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": choice}
    if isinstance(q, TextQuery):
        text = {"type": "string", "minLength": q.min_length, "maxLength": q.max_length}
        return {"name": q.name, "in": "query", "required": q.required, "description": q.description, "schema": text}
    schema: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": q.minimum, "maximum": q.upper}
    if q.default is not None:
        schema["default"] = q.default
    return {"name": q.name, "in": "query", "required": False, "description": q.description, "schema": schema}
