"""Durable positions of the live sources: one JSON file per source in `<store>/checkpoints/`.

A source saves its position only after the pipeline acknowledged what came before it (the WAL fsync), with the
same atomic, fsync'd replace as the tailer's checkpoints; a crash in between re-reads that one batch, which the
store's (cluster, auditID, stage) dedup absorbs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TypeVar

import msgspec

from kubetrail.collect.checkpoint import TailError, replace_durably

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


class SourceCheckpoints:
    """`source-<type>-<digest of the key>.json` files in `directory`; the key says what is read (a log group)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def file_for(self, kind: str, key: str) -> Path:
        digest = hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()[:16]
        return self.directory / f"source-{kind}-{digest}.json"

    def load(self, kind: str, key: str, into: type[T]) -> T | None:
        """The saved position, or None when the source never saved one."""
        path = self.file_for(kind, key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise TailError(f"cannot read the checkpoint: {error.strerror}", path=str(path)) from None
        try:
            return msgspec.json.decode(data, type=into)
        except msgspec.DecodeError as error:
            raise TailError(
                f"the checkpoint is damaged ({error})",
                path=str(path),
                hint="delete it to read the source from its start again (stored events are deduplicated)",
            ) from None

    def save(self, kind: str, key: str, position: object) -> None:
        """Replace the position atomically and durably."""
        replace_durably(self.file_for(kind, key), _encoder.encode(position) + b"\n")
