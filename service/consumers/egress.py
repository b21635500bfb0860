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

import httpx

from schemas.errors import ValidationError
from service.domain.urls import parse_http_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Registration answers a client: a resolver that does not answer in time leaves the check to delivery.
REGISTRATION_RESOLVE_SECONDS = 2.0


class ForbiddenAddress(httpx.ConnectError):
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
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
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
    except (httpx.ConnectError, TimeoutError):
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


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that resolves with `resolver` and connects to the address it checked (public only,
    unless told otherwise for local development)."""

    def __init__(self, resolver: Resolver, *, public_only: bool = True,
                 inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._resolver = resolver
        self._public_only = public_only
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        pinned = (await addresses_of(url.host, port, self._resolver, public_only=self._public_only))[0]
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions.setdefault("sni_hostname", url.host)  # the certificate is checked against the name
        # httpx set the Host header from the URL already; only where to connect changes.
        forwarded = httpx.Request(request.method, url.copy_with(host=str(pinned)), headers=request.headers,
                                  stream=request.stream, extensions=extensions)
        return await self._inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._inner.aclose()

