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

import httpx

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


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` stands for (a literal address stands for itself); OSError when it does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # getaddrinfo reads forms such as "0" or "0177.0.0.1" too: the addresses it gives are what a connect uses.
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


async def public_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host`; ForbiddenAddress when any of them is not public (or there are none)."""
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
    refused = [ip for ip in addresses if not is_public(ip)]
    if refused or not addresses:
        raise ForbiddenAddress(f"{host} is not a public address ({refused[0] if refused else 'none'})")
    return addresses


async def check_registration(host: str, port: int) -> None:
    """ForbiddenAddress when `host` is, or now resolves to, a non-public address; an unresolvable host passes."""
    try:
        async with asyncio.timeout(REGISTRATION_RESOLVE_SECONDS):
            await public_addresses(host, port)
    except ForbiddenAddress:
        raise
    except (httpx.ConnectError, TimeoutError):
        return  # no answer now; every call checks again


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to public addresses, pinned to the address it checked."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        pinned = (await public_addresses(url.host, port))[0]
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions.setdefault("sni_hostname", url.host)  # the certificate is checked against the name
        # httpx set the Host header from the URL already; only where to connect changes.
        forwarded = httpx.Request(request.method, url.copy_with(host=str(pinned)), headers=request.headers,
                                  stream=request.stream, extensions=extensions)
        return await self._inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._inner.aclose()
