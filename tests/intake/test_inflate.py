"""The one gzip reader: every member, bounded output, damage named, linear in the number of members."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from kubetrail.intake import GzipError, InflateLimitError, gunzip, open_gzip


def test_concatenated_members_are_one_stream() -> None:
    assert gunzip(gzip.compress(b"[1,") + gzip.compress(b"2]"), limit=100) == b"[1,2]"


def test_zero_padding_after_the_last_member_is_accepted() -> None:
    assert gunzip(gzip.compress(b"abc") + b"\0" * 512, limit=100) == b"abc"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (gzip.compress(b"x" * 1000)[:-9], GzipError),
        (b"not gzip at all", GzipError),
        (gzip.compress(b"abc") + b"garbage after", GzipError),
        (gzip.compress(b"0" * (1 << 20)), InflateLimitError),
    ],
    ids=["truncated", "not-gzip", "trailing-garbage", "bomb"],
)
def test_damage_and_bombs_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        gunzip(data, limit=64 << 10)


def test_a_body_exactly_at_the_limit() -> None:
    body = bytes(range(256)) * 40
    assert gunzip(zlib.compress(body, wbits=31), limit=len(body)) == body


def test_a_bomb_is_stopped_before_it_is_inflated_whole() -> None:
    """The limit is checked while inflating: a 1 GiB bomb costs at most the limit plus one step."""
    bomb = gzip.compress(b"\0" * (256 << 20), compresslevel=9)
    with pytest.raises(InflateLimitError):
        gunzip(bomb, limit=1 << 20)


def test_many_empty_members_before_the_data() -> None:
    member = gzip.compress(b"")
    assert gunzip(member * 50_000 + gzip.compress(b"end"), limit=100) == b"end"


def test_streaming_reader_reports_compressed_bytes_consumed() -> None:
    data = gzip.compress(b"line\n" * 100_000)
    raw = io.BytesIO(data)
    stream = open_gzip(raw)
    assert stream.read() == b"line\n" * 100_000
    assert raw.tell() == len(data)
