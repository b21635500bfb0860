"""Presign + PUT + confirm of many small images through `roomlog serve` and its embedded SeaweedFS.

Starts `roomlog serve` on the embedded default (PostgreSQL, NATS and SeaweedFS) in a fresh data directory,
creates a tenant, then uploads `--count` PNG images of about 64 KiB each (random pixels, so they do not
compress) with `--concurrency` clients: `POST /media/upload-url`, a real PUT to the presigned URL, then
`POST /media/{id}/confirm` (which reads the object back, hashes, sniffs, decodes the image, writes a
thumbnail and the verified copy). Prints uploads/s end to end and percentiles of the confirm call.

    .venv/bin/python bench/media.py [--count 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from send import NO_LIMITS, Server, with_server  # bench/ is not a package: send.py is found beside this file

SIDE = 148  # 148 x 148 RGB of noise: about 64 KiB as PNG


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 1 when an upload failed."""
    return with_server(_parser().parse_args(argv), run, prefix="roomlog-bench-media-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=1000, help="images to upload (default 1000)")
    p.add_argument("--concurrency", type=int, default=16, help="uploads in flight at once (default 16)")
    p.add_argument("--workers", type=int, default=1, help="roomlog serve --workers (default 1)")
    p.add_argument("--port", type=int, help="listen port (default: a free one)")
    p.add_argument("--data-dir", help="use (and keep) this data directory instead of a temporary one")
    p.add_argument("--keep-data-dir", action="store_true", help="do not delete the temporary data directory")
    p.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the server (repeatable)")
    p.add_argument("--roomlog", help="the roomlog executable (default: the one beside this interpreter)")
    return p


def image(seed: int) -> bytes:
    """A PNG of random pixels (incompressible), different for every seed."""
    out = io.BytesIO()
    Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3)).save(out, "PNG", compress_level=1)
    return out.getvalue()


def run(args: argparse.Namespace, server: Server) -> int:
    """Upload the images and print the report."""
    api_key = server.create_tenant("bench-media", NO_LIMITS)
    return asyncio.run(_run(args, f"http://127.0.0.1:{server.port}", api_key))


async def _run(args: argparse.Namespace, base_url: str, api_key: str) -> int:
    headers = {"X-API-Key": api_key, "X-User-Id": "bench"}
    images = [image(i) for i in range(args.count)]
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=limits) as api, \
            httpx.AsyncClient(timeout=60, limits=limits) as store:
        await _store_up(api)
        confirms: list[float] = []
        failures: list[str] = []
        queue = list(enumerate(images))

        async def worker() -> None:
            while queue:
                _, data = queue.pop()
                failure = await _upload(api, store, data, confirms)
                if failure:
                    failures.append(failure)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    mean_size = sum(map(len, images)) / len(images)
    print(f"images: {args.count} PNGs of {SIDE}x{SIDE}, mean {mean_size / 1024:.1f} KiB;"
          f" concurrency {args.concurrency}")
    print(f"uploads/s end to end (presign + PUT + confirm): {len(confirms) / elapsed:.1f} ({elapsed:.1f} s)")
    print("confirm latency ms: " + ", ".join(f"p{q}={_pct(confirms, q):.1f}" for q in (50, 90, 99)) +
          f", max={max(confirms, default=0) * 1000:.1f}")
    if failures:
        print(f"FAILED: {len(failures)} uploads, e.g. {failures[0]}")
        return 1
    return 0


async def _store_up(api: httpx.AsyncClient, seconds: float = 60.0) -> None:
    """Wait until the embedded store answers (the service starts before it)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await api.post("/media/upload-url", json={"filename": "probe.txt", "content_type": "text/plain",
                                                          "size": 1})
        if answer.status_code == 201:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the object store did not come up: {answer.text}")
        await asyncio.sleep(0.5)


async def _upload(api: httpx.AsyncClient, store: httpx.AsyncClient, data: bytes, confirms: list[float]) -> str | None:
    ticket = await api.post("/media/upload-url", json={"filename": "noise.png", "content_type": "image/png",
                                                       "size": len(data)})
    if ticket.status_code != 201:
        return f"upload-url {ticket.status_code} {ticket.text[:200]}"
    body = ticket.json()
    put = await store.put(body["upload_url"], content=data, headers=body["headers"])
    if put.status_code != 200:
        return f"PUT {put.status_code} {put.text[:200]}"
    started = time.perf_counter()
    confirmed = await api.post(f"/media/{body['media_id']}/confirm", json={})
    confirms.append(time.perf_counter() - started)
    return None if confirmed.status_code == 200 else f"confirm {confirmed.status_code} {confirmed.text[:200]}"


def _pct(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)] * 1000 if ordered else 0.0


if __name__ == "__main__":
    sys.exit(main())
