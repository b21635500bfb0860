"""Where outgoing webhook calls may go: public addresses only, checked when a webhook is registered and again
on every call, against the address actually connected to.

A URL that named a public host when it was registered may resolve to 127.0.0.1 a minute later (DNS
rebinding), so each call resolves the host itself, refuses when any address is not public, and connects
to the address it checked (the Host header and TLS server name stay the URL's host).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from schemas.errors import ValidationError
from service.domain.urls import parse_http_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Registration answers a client: a resolver that does not answer in time leaves the check to delivery.
REGISTRATION_RESOLVE_SECONDS = 2.0


# An answer's body is read up to this much: receivers' answers are read for an error detail or a small result.
MAX_ANSWER_BYTES = 1 << 20


class Unreachable(OSError):
    """An outgoing call could not be made: the host did not resolve, refused, or did not answer in time."""


class ForbiddenAddress(Unreachable):
    """A webhook host is, or resolves to, an address that is not public."""


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is public unicast: not loopback, link-local, private, multicast, reserved or unspecified."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class Resolver:
    """Name lookups on threads of its own, each bounded in time; closing it drops the lookups still queued.

    getaddrinfo blocks a thread. On the event loop's default executor, lookups of hosts that never answer
    pile up behind its few threads, and the process cannot exit until every one of them has run.
    """

    def __init__(self, *, threads: int = 4, timeout: float = 5.0) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="resolver")
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address `host` stands for (a literal address stands for itself); OSError when it does not resolve."""
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        lookup = asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        try:
            infos = await asyncio.wait_for(lookup, self._timeout)
        except TimeoutError:
            raise OSError(f"no answer within {self._timeout:g} s") from None
        # getaddrinfo reads forms such as "0" or "0177.0.0.1" too: the addresses it gives are what a connect uses.
        return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]

    def close(self) -> None:
        """Cancel the lookups still waiting for a thread; the running ones end by themselves."""
        self._executor.shutdown(wait=False, cancel_futures=True)


async def addresses_of(host: str, port: int, resolver: Resolver, *, public_only: bool = True) -> list[IPAddress]:
    """The addresses of `host`; ForbiddenAddress when `public_only` and any of them is not public (or none)."""
    try:
        addresses = await resolver.resolve(host, port)
    except OSError as exc:
        raise Unreachable(f"cannot resolve {host}: {exc}") from None
    if not public_only and addresses:
        return addresses
    refused = [ip for ip in addresses if not is_public(ip)]
    if refused or not addresses:
        raise ForbiddenAddress(f"{host} is not a public address ({refused[0] if refused else 'none'})")
    return addresses


async def check_registration(host: str, port: int, resolver: Resolver) -> None:
    """ForbiddenAddress when `host` is, or now resolves to, a non-public address; an unresolvable host passes."""
    try:
        async with asyncio.timeout(REGISTRATION_RESOLVE_SECONDS):
            await addresses_of(host, port, resolver)
    except ForbiddenAddress:
        raise
    except (Unreachable, TimeoutError):
        return  # no answer now; every call checks again


async def check_url(url: str, resolver: Resolver, *, allow_private: bool, field: str = "url") -> None:
    """400 on `field` unless `url` is an http(s) URL of a public host (any host when `allow_private`)."""
    try:
        checked = parse_http_url(url)
    except ValueError as exc:
        raise ValidationError(f"{field} {exc}", field=field) from None
    if allow_private:
        return
    try:
        await check_registration(checked.host, checked.port, resolver)
    except ForbiddenAddress:
        raise ValidationError(f"{field} must point at a public address (not loopback, private, link-local,"
                              " multicast, reserved or unspecified)", field=field) from None


def _described(exc: Exception) -> str:
    """What went wrong, for a dead letter: the error's kind and its message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _CheckedResolver(AbstractResolver):
    """aiohttp's name lookups, through `Resolver` and refused unless every address is public (when asked)."""

    def __init__(self, resolver: Resolver, *, public_only: bool) -> None:
        self._resolver = resolver
        self._public_only = public_only

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        addresses = await addresses_of(host, port, self._resolver, public_only=self._public_only)
        return [ResolveResult(hostname=host, host=str(ip), port=port,
                              family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)
                for ip in addresses]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """A receiver's answer: its status, reason phrase and (the first MAX_ANSWER_BYTES of) its body."""

    status: int
    reason: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class OutboundHttp:
    """POSTs to webhook receivers and integrations: public addresses only (unless told otherwise for local
    development), checked on every new connection against the address actually connected to; keep-alive
    connections are reused, and redirects are never followed.

    aiohttp rather than httpx: on this path httpx spent about 2.4 ms of CPU per call against aiohttp's 0.2 ms
    (bench/README.md), and a busy tenant's bots and webhooks make thousands of calls a second.
    """

    def __init__(self, resolver: Resolver, *, public_only: bool = True, timeout: float = 10.0,
                 connections: int = 64) -> None:
        self._checked = _CheckedResolver(resolver, public_only=public_only)
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Resolve on every new connection (no DNS cache): a name may point elsewhere by the next one.
            connector = aiohttp.TCPConnector(resolver=self._checked, use_dns_cache=False, limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str], *,
                   limit_seconds: float | None = None) -> Answer:
        """POST `body` to `url`; Unreachable (ForbiddenAddress for a refused address) or TimeoutError on failure."""
        seconds = self._timeout if limit_seconds is None else limit_seconds
        try:
            host = URL(url).host or ""
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        # aiohttp connects to a literal address without asking a resolver: put it to the same check here.
        if literal is not None:
            await self._checked.resolve(host)
        try:
            async with self._open().post(url, data=body, headers=headers, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=seconds)) as response:
                return Answer(response.status, response.reason or "", await response.content.read(MAX_ANSWER_BYTES))
        except TimeoutError:
            raise TimeoutError(f"timeout after {seconds:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, Unreachable):  # refused or unresolved by our own check
                raise exc.os_error from None
            raise Unreachable(_described(exc)) from None
        except (aiohttp.ClientError, ValueError) as exc:  # e.g. the receiver closed the connection unanswered
            raise Unreachable(_described(exc)) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
