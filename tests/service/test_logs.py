"""The log processors render exactly what structlog's TimeStamper and LogfmtRenderer render."""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

import pytest
import structlog
from hypothesis import example, given
from hypothesis import strategies as st

from service.observability.logs import IsoUtcTimestamp, LogfmtRenderer, configure_logging

KEY_ORDER = ["timestamp", "level", "event"]

keys = st.one_of(st.sampled_from([*KEY_ORDER, "route", "status", "user"]), st.text(max_size=8))
values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(alphabet=st.sampled_from('ab =" \\\n\t/{}é'), max_size=12),
)


def outcome(render: Any, event_dict: dict[str, Any]) -> str:
    try:
        return str(render(None, "info", dict(event_dict)))
    except ValueError as exc:
        return f"ValueError: {exc}"


@given(st.dictionaries(keys, values, max_size=8))
@example({"event": "request", "route": "/rooms/{room_id}/messages", "status": 201, "duration_ms": 1.5, "tenant": None})
@example({"event": 'a "quoted" \\ value\nwith a newline', "flag": True, "off": False})
@example({"bad key": 1})
def test_logfmt_renders_what_structlog_renders(event_dict: dict[str, Any]) -> None:
    ours = LogfmtRenderer(key_order=KEY_ORDER)
    theirs = structlog.processors.LogfmtRenderer(key_order=KEY_ORDER)
    assert outcome(ours, event_dict) == outcome(theirs, event_dict)
    assert outcome(ours, event_dict) == outcome(theirs, event_dict)  # a second time: keys are known now


def test_logfmt_rejects_a_key_with_whitespace_every_time() -> None:
    render = LogfmtRenderer(key_order=KEY_ORDER)
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid key"):
            render(None, "info", {"a key": 1})


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))  # up to the year 2100, in nanoseconds
@example(1_700_000_000 * 10**9)  # a whole second: no fraction
@example(1_700_000_000 * 10**9 + 999)  # under a microsecond: still no fraction
@example(1_700_000_000 * 10**9 + 1_000)
def test_timestamp_is_the_iso_utc_text_of_the_same_instant(nanos: int) -> None:
    stamped = IsoUtcTimestamp(clock_ns=lambda: nanos)(None, "info", {})["timestamp"]
    seconds, rest = divmod(nanos, 10**9)
    instant = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=rest // 1000)
    assert stamped == instant.isoformat().replace("+00:00", "Z")


def test_timestamp_follows_the_clock_across_seconds() -> None:
    now = [1_700_000_000_250_000_000]
    stamp = IsoUtcTimestamp(clock_ns=lambda: now[0])
    first = stamp(None, "info", {})["timestamp"]
    now[0] += 10**9
    second = stamp(None, "info", {})["timestamp"]
    assert (first, second) == ("2023-11-14T22:13:20.250000Z", "2023-11-14T22:13:21.250000Z")


def test_timestamp_has_the_format_of_structlogs_iso_utc_stamper() -> None:
    ours = IsoUtcTimestamp()(None, "info", {})["timestamp"]
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    iso_utc = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"
    assert re.fullmatch(iso_utc, ours) and re.fullmatch(iso_utc, theirs)
    assert abs(datetime.datetime.fromisoformat(ours) - datetime.datetime.fromisoformat(theirs)).total_seconds() < 1


@pytest.fixture
def configured_logging() -> Any:
    """configure_logging for one test; structlog and the root logger are put back afterwards."""
    saved, handlers, level = structlog.get_config(), logging.getLogger().handlers[:], logging.getLogger().level
    yield configure_logging
    structlog.configure(**saved)
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


def fail_and_log(logger: Any) -> None:
    try:
        raise ConnectionResetError("peer went away")
    except ConnectionResetError:
        logger.exception("delivery job failed")


@pytest.mark.parametrize("json", [False, True])
def test_a_logged_exception_shows_its_type_message_and_traceback(
    configured_logging: Any, capsys: pytest.CaptureFixture[str], json: bool
) -> None:
    configured_logging(json=json)
    fail_and_log(structlog.get_logger("roomlog.test"))
    line = capsys.readouterr().err.strip()
    assert "ConnectionResetError: peer went away" in line
    assert "Traceback (most recent call last)" in line
    assert " exc_info" not in line
    assert len(line.splitlines()) == 1  # one record, one line


@pytest.mark.parametrize("json", [False, True])
def test_a_stdlib_record_with_an_exception_shows_it(
    configured_logging: Any, capsys: pytest.CaptureFixture[str], json: bool
) -> None:
    configured_logging(json=json)
    fail_and_log(logging.getLogger("roomlog.test.stdlib"))
    line = capsys.readouterr().err.strip()
    assert "ConnectionResetError: peer went away" in line
    assert len(line.splitlines()) == 1
