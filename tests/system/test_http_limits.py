"""A real `roomlog serve` bounds what a client may make it hold: a request head's size, the time a head or body
takes to arrive, and logs a client that went away as that, not as a server error.

Raw sockets on loopback, every read with a timeout; the limits are set low (8 KiB, 1 s) so the tests are quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.system._servers import wait_health
from tests.system.conftest import Processes, Serve, roomlog_env

MAX_HEADER_BYTES = 8192
READ_SECONDS = 1.0
# Time for a refusal to arrive: the limit, plus room for a loaded 2-core machine.
ANSWER_SECONDS = READ_SECONDS + 5.0


@pytest.fixture(scope="module")
def module_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("http-limits")) as processes:
        yield processes


@pytest.fixture(scope="module")
async def serve(module_processes: Processes, database_url: str, nats_url: str) -> AsyncIterator[Serve]:
    env = roomlog_env(database_url=database_url, nats_url=nats_url, ROOMLOG_ACCESS_LOG="true",
                      ROOMLOG_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES), ROOMLOG_REQUEST_READ_SECONDS=str(READ_SECONDS))
    serve = module_processes.serve(env=env)
    await wait_health(serve, lambda body: "status" in body)
    yield serve


@contextlib.asynccontextmanager
async def connection(serve: Serve) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", serve.port), 5)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (at most ANSWER_SECONDS)."""
    return await asyncio.wait_for(reader.read(), ANSWER_SECONDS)


async def logged_after(serve: Serve, offset: int, text: str) -> str:
    """The server's stderr after `offset`, once it contains `text` (waiting up to ANSWER_SECONDS)."""
    for _ in range(int(ANSWER_SECONDS / 0.05)):
        logged = serve.stderr()[offset:]
        if text in logged:
            return logged
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {text!r} in the log:\n{serve.stderr()[offset:][-3000:]}")


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def error_code(response: bytes) -> str:
    """The `error.code` of a response's JSON body (the documented error format)."""
    return str(json.loads(response.split(b"\r\n\r\n", 1)[1])["error"]["code"])


async def test_a_small_request_is_served(serve: Serve) -> None:
    async with connection(serve) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: roomlog\r\nConnection: close\r\n\r\n")
        assert status_of(await answer(reader)) in (200, 503)


async def test_headers_over_the_limit_are_431_and_the_connection_closes(serve: Serve) -> None:
    async with connection(serve) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: roomlog\r\nX-Big: " + b"a" * (4 * MAX_HEADER_BYTES) + b"\r\n\r\n")
        response = await answer(reader)
    assert status_of(response) == 431
    assert b"connection: close" in response.lower()
    assert error_code(response) == "HEADERS_TOO_LARGE"


async def test_a_request_that_is_not_http_is_400_in_the_error_format(serve: Serve) -> None:
    async with connection(serve) as (reader, writer):
        writer.write(b"DELETE /rooms/x HTTP/1.1\r\nHost: roomlog\r\nContent-Length: bindings\r\n\r\n")
        response = await answer(reader)
    assert status_of(response) == 400
    assert b"content-type: application/json" in response.lower()
    assert error_code(response) == "MALFORMED_REQUEST"


async def test_a_16_mib_header_is_not_read_to_its_end(serve: Serve) -> None:
    sent = 0
    response = b""
    async with connection(serve) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: roomlog\r\nX-Big: ")
        try:
            async with asyncio.timeout(30):
                while sent < 16 * 1024 * 1024 and not reader.at_eof():
                    writer.write(b"a" * 65536)
                    await writer.drain()
                    sent += 65536
            writer.write(b"\r\n\r\n")
            response = await answer(reader)
        except ConnectionError:  # refused and closed while we were still sending: what we want
            pass
    assert not response or status_of(response) == 431, response[:200]
    assert sent < 16 * 1024 * 1024


async def test_a_slow_body_is_408_and_its_connection_is_released(serve: Serve) -> None:
    head = (b"POST /auth/login HTTP/1.1\r\nHost: roomlog\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n")
    started = time.monotonic()

    async def slow_client() -> bytes:
        async with connection(serve) as (reader, writer):
            writer.write(head + b'{"email":')  # 10 of the 100 bytes, then nothing
            return await answer(reader)

    responses = await asyncio.gather(*(slow_client() for _ in range(20)))
    assert [status_of(r) for r in responses] == [408] * 20
    assert b"REQUEST_TIMEOUT" in responses[0]
    assert time.monotonic() - started < ANSWER_SECONDS


async def test_a_slow_head_is_408(serve: Serve) -> None:
    async with connection(serve) as (reader, writer):
        writer.write(b"GET /health HTTP/1.1\r\nHost: roo")
        response = await answer(reader)
    assert status_of(response) == 408
    assert error_code(response) == "REQUEST_TIMEOUT"


async def test_a_connection_that_sends_nothing_is_closed(serve: Serve) -> None:
    async with connection(serve) as (reader, _writer):
        assert await answer(reader) == b""


async def test_a_client_disconnect_is_logged_as_499_without_a_traceback(serve: Serve) -> None:
    before = len(serve.stderr())
    async with connection(serve) as (_reader, writer):
        writer.write(b"POST /auth/login HTTP/1.1\r\nHost: roomlog\r\nContent-Length: 100\r\n\r\n" + b'{"email":')
        await writer.drain()
        await asyncio.sleep(0.2)  # the app is waiting for the rest of the body
    logged = await logged_after(serve, before, "route=/auth/login")
    line = next(x for x in logged.splitlines() if "route=/auth/login" in x)
    assert "status=499" in line and 'error="client disconnected"' in line
    assert "Traceback" not in logged and "status=500" not in logged
