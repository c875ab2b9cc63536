"""Durable tail positions: which file (device, inode) a tailer read up to which byte, and what that last line was.

A checkpoint is written (temporary file, fsync, rename, fsync of the directory) only after the store has
acknowledged the lines before `offset`, so a restart neither loses nor repeats them. The SHA-256 of the last
delivered line identifies the file even when its inode was reused, or when it was copied and truncated.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgspec

from kubetrail.errors import KubetrailError


class TailError(KubetrailError):
    """A tailed file or checkpoint that cannot be used; names the path."""

    def __init__(self, message: str, *, path: str = "", hint: str = "") -> None:
        self.message = message
        self.path = path
        self.hint = hint
        super().__init__(f"{path}: {message}" if path else message)


class Checkpoint(msgspec.Struct, frozen=True):
    """Where the tail of `path` stands: the lines in [0, offset) of file (device, inode) are stored.

    `line_start`..`offset` is the last delivered line and `line_sha256` its digest (empty when offset is 0);
    `known` lists the (device, inode, first-line digest) of every backup already read or older, so that a
    backup rotated away between two looks is recognised as new (inode numbers alone are reused), and a gzip'd
    copy of one already read (same first line, new inode) is not. `name` is what the file was called when the
    checkpoint was written (for messages; absent from checkpoints of older versions).
    """

    path: str
    device: int
    inode: int
    offset: int
    line_start: int = 0
    line_sha256: str = ""
    known: list[tuple[int, int, str]] = []
    name: str = ""


def line_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_decoder = msgspec.json.Decoder(Checkpoint)
_encoder = msgspec.json.Encoder()


class CheckpointStore:
    """One JSON file per tailed path in `directory` (usually `<store>/checkpoints/`)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def file_for(self, tailed: str | os.PathLike[str]) -> Path:
        key = hashlib.sha256(os.path.abspath(tailed).encode()).hexdigest()[:16]
        return self.directory / f"tail-{key}.json"

    def load(self, tailed: str | os.PathLike[str]) -> Checkpoint | None:
        """The checkpoint of `tailed`, or None when it was never tailed."""
        path = self.file_for(tailed)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise TailError(f"cannot read the checkpoint: {error.strerror}", path=str(path)) from None
        try:
            return _decoder.decode(data)
        except msgspec.DecodeError as error:
            raise TailError(
                f"the checkpoint is damaged ({error})",
                path=str(path),
                hint="delete it to re-read the file from its start (stored events are deduplicated)",
            ) from None

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint atomically and durably."""
        replace_durably(self.file_for(checkpoint.path), _encoder.encode(checkpoint) + b"\n")


def replace_durably(target: Path, data: bytes) -> None:
    """Replace `target` with `data` atomically (temporary file, fsync, rename, fsync of the directory): after a
    crash it holds either the old or the new bytes, never a mix. The directory is created (0700) if missing."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
