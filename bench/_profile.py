"""Summaries of a py-spy collapsed-stack profile (`py-spy record --format raw`): where the samples are."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

PROJECT = ("service/", "eventstore/", "projections/", "schemas/")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")
_AREAS = (
    ("roomlog", PROJECT),
    ("asyncpg", ("asyncpg/",)),
    ("uvicorn/httptools", ("uvicorn/", "httptools/")),
    ("starlette", ("starlette/",)),
    ("structlog/logging", ("structlog/", "logging/")),
    ("asyncio", ("asyncio/",)),
    ("nats", ("nats/",)),
    ("msgspec", ("msgspec/",)),
)


def frame_key(frame: str) -> tuple[str, str]:
    """(file, function) of a `func (file:line)` frame; the raw text when it has no location."""
    m = _FRAME.match(frame)
    return (m["file"], m["func"]) if m else ("", frame)


def area_of(file: str) -> str:
    """Which party a source file belongs to."""
    for area, prefixes in _AREAS:
        if file.startswith(prefixes):
            return area
    return "other (stdlib, …)"


def load(path: Path) -> list[tuple[str, list[tuple[str, str]], int]]:
    """(process, frames root first, samples) per line of a collapsed-stack file."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        parts = body.split(";")
        # With --subprocesses a worker's stack starts with its parent's process frame, then its own.
        nested = 0
        while nested < len(parts) and parts[nested].startswith("process "):
            nested += 1
        process = parts[nested - 1].split(":", 1)[0] if nested else ""
        stacks.append((process, [frame_key(f) for f in parts[nested:]], int(count)))
    return stacks


def summarise_collapsed(path: Path, *, root: Path | None = None, top: int = 25) -> None:
    """Print the busiest functions (self and inclusive), the project's own, and samples per area."""
    stacks = load(path)
    total = sum(n for _, _, n in stacks)
    if not total:
        print(f"profile {path}: no samples")
        return
    per_process: Counter[str] = Counter()
    self_time: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    areas: Counter[str] = Counter()
    for process, frames, n in stacks:
        per_process[process] += n
        if frames:
            self_time[frames[-1]] += n
            areas[area_of(frames[-1][0])] += n
        for key in set(frames):
            inclusive[key] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    print(f"\nprofile {path}: {total} samples (non-idle) in {len(per_process)} process(es): "
          + ", ".join(f"{p or '?'} {pct(n).strip()}" for p, n in per_process.most_common()))
    print("samples by where the leaf frame is (self time):")
    for area, n in areas.most_common():
        print(f"  {pct(n)}  {area}")
    print(f"top {top} functions by self time:")
    for (file, func), n in self_time.most_common(top):
        print(f"  {pct(n)}  {file}:{func}")
    print(f"top {top} roomlog functions by inclusive time (the function and what it calls):")
    ours = [(k, n) for k, n in inclusive.most_common() if k[0].startswith(PROJECT)]
    for (file, func), n in ours[:top]:
        print(f"  {pct(n)}  {file}:{func}")
