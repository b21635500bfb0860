"""A Starlette Router that tries only the routes a path could match, instead of every route's regex in turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import PARAM_REGEX, BaseRoute, Match, Route, Router, WebSocketRoute
from starlette.types import Lifespan, Receive, Scope, Send

# Convertors whose pattern never matches a "/", so a parameter stays inside its path segment.
_ONE_SEGMENT = ("", ":str", ":int", ":float", ":uuid")

GroupKey = tuple[int, str]  # (number of "/" in the path, first path segment)


class IndexedRouter(Router):
    """Routes an HTTP request by trying only the routes with its number of segments and its first segment.

    Within a group the routes keep their order, so the first full match — or else the first partial
    one (a 405) — is the route Starlette's scan would pick. When no candidate matches, or the routes
    cannot be grouped, Starlette's own scan runs: 404s and slash redirects stay exactly Starlette's.
    """

    def __init__(self, routes: Sequence[BaseRoute], *, lifespan: Lifespan[Any] | None = None) -> None:
        super().__init__(routes, lifespan=lifespan)
        self.groups = route_groups(self.routes)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        # root_path changes the path the routes see (get_route_path); such requests take the full scan.
        if self.groups is None or scope["type"] != "http" or scope.get("root_path"):
            await super().app(scope, receive, send)
            return
        partial = None
        for route in self.groups.get(group_key(scope["path"]), ()):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                await self._handle(route, child_scope, scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial, partial_scope = route, child_scope
        if partial is not None:
            await self._handle(partial, partial_scope, scope, receive, send)
            return
        await super().app(scope, receive, send)

    async def _handle(self, route: Route, child_scope: Scope, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("router", self)
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def group_key(path: str) -> GroupKey:
    """The group of routes a path (or a route's path pattern) belongs to."""
    return path.count("/"), path[1:].partition("/")[0]


def route_groups(routes: Sequence[BaseRoute]) -> dict[GroupKey, list[Route]] | None:
    """The HTTP routes by group, in their order; None when some route could match paths of other groups."""
    groups: dict[GroupKey, list[Route]] = {}
    for route in routes:
        if isinstance(route, WebSocketRoute):
            continue  # never matches an HTTP request
        if not isinstance(route, Route) or not _groupable(route.path):
            return None
        groups.setdefault(group_key(route.path), []).append(route)
    return groups


def _groupable(path: str) -> bool:
    """Whether the first segment is plain text and every parameter stays within one segment."""
    first = path[1:].partition("/")[0]
    return "{" not in first and all(convertor in _ONE_SEGMENT for _, convertor in PARAM_REGEX.findall(path))
