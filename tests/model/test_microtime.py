"""MicroTime: the apiserver's RFC 3339 timestamp with exactly six fractional digits, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.model import format_microtime, normalize_microtime, parse_microtime

WIRE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 3, 19, 10, 30, 0, 50000, tzinfo=UTC), "2026-03-19T10:30:00.050000Z"),
        (datetime(2026, 3, 19, 10, 30, tzinfo=UTC), "2026-03-19T10:30:00.000000Z"),
        (datetime(2026, 3, 19, 10, 30, 0, 1, tzinfo=UTC), "2026-03-19T10:30:00.000001Z"),
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12-31T23:59:59.999999Z"),
        (datetime(2026, 3, 19, 12, 30, 0, 50000, tzinfo=timezone(timedelta(hours=2))), "2026-03-19T10:30:00.050000Z"),
        (datetime(2026, 3, 19, 10, 30, 0, 50000), "2026-03-19T10:30:00.050000Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05.000000Z"),
    ],
)
def test_format(moment: datetime, text: str) -> None:
    assert format_microtime(moment) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-03-19T10:30:00.050000Z", datetime(2026, 3, 19, 10, 30, 0, 50000, tzinfo=UTC)),
        ("2026-03-19T10:30:00Z", datetime(2026, 3, 19, 10, 30, tzinfo=UTC)),
        ("2026-03-19T10:30:00.05Z", datetime(2026, 3, 19, 10, 30, 0, 50000, tzinfo=UTC)),
        ("2026-03-19T10:30:00.123456789Z", datetime(2026, 3, 19, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2026-03-19T12:30:00.050000+02:00", datetime(2026, 3, 19, 10, 30, 0, 50000, tzinfo=UTC)),
        ("2026-03-19T10:30:00.050000", datetime(2026, 3, 19, 10, 30, 0, 50000, tzinfo=UTC)),
    ],
)
def test_parse_returns_aware_utc(text: str, moment: datetime) -> None:
    parsed = parse_microtime(text)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("2018-10-26T13:42:46Z", "2018-10-26T13:42:46.000000Z"),
        ("2018-10-26T13:42:46.7647Z", "2018-10-26T13:42:46.764700Z"),
        ("2018-10-26T15:42:46.764713+02:00", "2018-10-26T13:42:46.764713Z"),
        ("2018-10-26T13:42:46.764713999Z", "2018-10-26T13:42:46.764713Z"),
    ],
)
def test_normalize(text: str, wire: str) -> None:
    assert normalize_microtime(text) == wire


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-03-19T25:00:00Z"])
def test_invalid_timestamps_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_microtime(text)


@settings(deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), timezones=st.just(UTC)))
def test_format_then_parse_is_identity(moment: datetime) -> None:
    text = format_microtime(moment)
    assert WIRE.fullmatch(text)
    assert parse_microtime(text) == moment
    assert normalize_microtime(text) == text


@settings(deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_any_zone_formats_as_utc(moment: datetime) -> None:
    try:
        expected = moment.astimezone(UTC)
    except OverflowError:
        return
    text = format_microtime(moment)
    assert WIRE.fullmatch(text)
    assert parse_microtime(text) == expected
