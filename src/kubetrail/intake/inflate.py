"""gzip, read as the apiserver's tools write it: any number of members, bounded output, linear time.

Every door that may see gzip (files, rotated backups, webhook bodies, cloud deliveries) inflates through
`GzipReader`. Input is fed to zlib in small pieces, so a stream of many tiny members costs time in
proportion to its size (zlib copies what follows a member's end; a piece bounds that copy).
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

from kubetrail.intake.batch import IntakeError

GZIP_MAGIC = b"\x1f\x8b"
_PIECE = 4 << 10
"""Compressed bytes fed at once: bounds what one call inflates (a bomb: ~4 MiB) and what zlib copies after a
member's end."""
_READ = 64 << 10


class GzipError(IntakeError):
    """gzip data that is corrupt or ends before its last member does."""


class InflateLimitError(IntakeError):
    """gzip data that inflates to more than the caller allows."""


def is_gzip(head: bytes) -> bool:
    return head[:2] == GZIP_MAGIC


class GzipReader(io.RawIOBase):
    """A readable stream of the inflated bytes of `raw` (all members, in order).

    `consumed` is how many compressed bytes have been read, for progress. Zero padding after the last member
    (as tape and some uploaders add) is accepted; anything else after it is an error.
    """

    def __init__(self, raw: BinaryIO, *, source: str = "", limit: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._source = source
        self._limit = limit
        self._inflater: zlib._Decompress | None = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._input = memoryview(b"")
        self._pending = b""
        self._offset = 0
        self._produced = 0
        self._ended = False
        self._member_started = False
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Read more compressed input; False at its end."""
        if self._input:
            return True
        data = self._raw.read(_READ)
        if not data:
            return False
        self._input = memoryview(data)
        return True

    def _inflate_some(self) -> bytes:
        while not self._ended:
            if not self._fill():
                if self._member_started:
                    raise GzipError("gzip data is truncated (the stream ends inside a member)", source=self._source)
                self._ended = True
                break
            if self._inflater is None:
                if self._input[0] == 0:
                    if bytes(self._input).strip(b"\x00"):
                        raise GzipError("data after the last gzip member is not gzip", source=self._source)
                    self.consumed += len(self._input)
                    self._input = memoryview(b"")
                    continue
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            piece = self._input[:_PIECE]
            try:
                out = self._inflater.decompress(piece)
            except zlib.error as error:
                raise GzipError(f"gzip data is corrupt ({error})", source=self._source) from None
            self._member_started = True
            used = len(piece) - len(self._inflater.unused_data)
            self.consumed += used
            self._input = self._input[used:]
            if self._inflater.eof:
                self._inflater = None
                self._member_started = False
            if out:
                self._produced += len(out)
                if self._limit is not None and self._produced > self._limit:
                    raise InflateLimitError(f"gzip data inflates to more than {self._limit} bytes", source=self._source)
                return out
        return b""

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._offset >= len(self._pending):
            self._pending = self._inflate_some()
            self._offset = 0
        start = self._offset
        count = min(len(view), len(self._pending) - start)
        view[:count] = self._pending[start : start + count]
        self._offset = start + count
        return count


def open_gzip(raw: BinaryIO, *, source: str = "", limit: int | None = None) -> BinaryIO:
    """A buffered reader of `raw`'s inflated bytes."""
    return io.BufferedReader(GzipReader(raw, source=source, limit=limit), buffer_size=_READ)


def gunzip(data: bytes, *, limit: int, source: str = "") -> bytes:
    """Inflate a whole gzip body; InflateLimitError past `limit` bytes, GzipError when corrupt or truncated."""
    reader = GzipReader(io.BytesIO(data), source=source, limit=limit)
    parts: list[bytes] = []
    while chunk := reader.read(_READ):
        parts.append(chunk)
    return b"".join(parts)
