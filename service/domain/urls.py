"""What an http(s) URL a client gives us must be: absolute, with a host, printable, and no credentials."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class HttpUrl:
    """The parts of a checked URL a caller needs: scheme, host and port (the scheme's default when absent)."""

    scheme: str
    host: str
    port: int


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL we accept, or None when it is."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port or bracketed host
        return "must be an absolute http or https URL"
    if parts.scheme not in ("http", "https") or not host or port == 0:
        return "must be an absolute http or https URL"
    if not url.isprintable() or " " in url:
        return "must not contain spaces or control characters"
    if "@" in parts.netloc:
        return "must not contain a user name or password"
    return None


def parse_http_url(url: str) -> HttpUrl:
    """The parts of an http(s) URL; ValueError (with the reason) for one `http_url_problem` refuses."""
    if problem := http_url_problem(url):
        raise ValueError(problem)
    parts = urlsplit(url)
    assert parts.hostname is not None
    return HttpUrl(parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
