"""Follow an apiserver audit log file across rotation, delivering whole lines and checkpointing durably.

Rotation by rename (lumberjack: `audit.log` becomes `audit-<time>.log`, a new `audit.log` appears; logrotate
`create`) is noticed when the path names another inode: the old file is read to its end (it stays open, so
even a compressed-and-deleted backup is finished) and any backup rotated in between is read too, before the new
file. Copy-truncate (logrotate `copytruncate`) is noticed when the file shrinks or the last delivered line is no
longer where it was (checked at every look, so a file truncated and written past the old place again between two
looks is noticed too): the rest is read from the copy (found by that line's SHA-256), then the copies of any later
copy-truncates made before the look (each counted as a truncation), then the file from its start. A line is
delivered only once its newline is written; a rotated file's unterminated last line is delivered as is (it fails
validation and goes to the dead-letter file rather than being dropped).

Backups rotated away unseen (between two looks, or while kubetrail was stopped) are read oldest first, plain or
gzip'd (lumberjack's `--audit-log-compress`, logrotate's `compress`), each once. A backup is recognised by its
first line's digest (read decompressed; past a leading hole of NULs, which a writer without O_APPEND leaves after
copy-truncate) together with its device and inode; a gzip'd backup whose first line is that of a generation
already read is the compressed copy of it and is not read again. While a generation is being compressed, its
plain file is read, never the half-written `.gz`.

After the sink (the store) acknowledges a batch, the position is checkpointed; a restart resumes there, in the
live file or in whichever backup the checkpointed file became, even renamed and compressed (found by the last
delivered line's SHA-256 at its decompressed offset), then reads the newer generations and the live file. A
crash between acknowledgement and checkpoint re-delivers that batch, which the store's (cluster, auditID, stage)
dedup absorbs. When the checkpointed file is gone altogether (deleted, or rotated past the backups kept, while
kubetrail was stopped), the rest of it is lost: that is logged as a warning naming it and counted in
`lost_rotations`, and the newer generations and the live file are still read.

What copy-truncate guarantees: every line in a copy or in the file when the tailer looks is delivered once and in
order, however many copy-truncates came between two looks, as long as the copies are kept. Known limits:
copy-truncate loses lines written between the copy and the truncation (a property of copy-truncate: they are in
neither); a truncation is noticed by content, so one rewritten byte-for-byte with what was there (never the case
with audit events' IDs and times) is not; a generation deleted before kubetrail read it is lost (counted when it
held the checkpoint);
a `.gz` whose first line repeats that of a generation already read is taken for its copy (audit events' IDs
and times make first lines unique); a corrupt or cut-short `.gz` is read as far as it inflates (to within
1 MiB) and the rest is counted lost, but one cut short before its first line ends looks like one being written
and is not read; generations rotated away unseen are ordered by what their names say within one naming scheme
(lumberjack's timestamps, logrotate's numbers and dates) and across schemes by modification time, which the
kernel keeps only to its clock tick and a compressor may reset, so when two schemes rotate the same file very
fast their order may differ (never their content); a backup starting with a hole of more than 256 MiB is told
apart by inode only, so its compressed copy is read again (dedup absorbs it); a sink failure while a missed
backup is read makes the backup be read again from its start (dedup absorbs it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubetrail.collect.checkpoint import Checkpoint, CheckpointStore, line_digest
from kubetrail.intake import Batch, GzipError, add_line, open_gzip
from kubetrail.pipeline import Pipeline
from kubetrail.store import Store

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FINGERPRINT_MAX = 64 << 10
HEAD = 4096
"""How much of a first line identifies a backup."""
HOLE_MAX = 256 << 20
"""How far past a leading hole of NULs to look for the first line."""
_HOLE_HEAD = line_digest(bytes(HEAD))
"""The head digest of a file starting with a hole of 4 KiB or more, as older versions recorded it: the same for
every such file, so it identifies nothing by itself."""


@dataclass(frozen=True)
class TailBatch:
    """Whole lines read from `path`, the first starting at byte `offset` (blank lines left out)."""

    path: str
    offset: int
    lines: list[bytes]


Sink = Callable[[TailBatch], None]
"""Stores a batch durably, or raises (then the same lines are offered again later)."""


@dataclass(frozen=True)
class TailOptions:
    """How often to look, how much to deliver at once, where a never-seen file starts, how long to wait."""

    poll_interval: float = 0.25
    from_start: bool = True
    retry_delay: float = 1.0
    rotate_grace: float = 1.0


@dataclass
class TailStats:
    """Counters for `/metrics` and tests."""

    lines: int = 0
    batches: int = 0
    renames: int = 0
    truncations: int = 0
    """Copy-truncates of the tailed file: noticed on it, or found as its copies when several came between looks."""
    backups_read: int = 0
    """Generations renamed away unseen (between two looks, or while stopped) and read from their backups."""
    lost_rotations: int = 0
    failures: int = 0
    lag_bytes: int = 0


Reader = Callable[[int, int], bytes]
Key = tuple[int, int]
Identity = tuple[int, int, str]
"""A backup's identity: device, inode and the digest of its first line (inode numbers are reused)."""
_NUMBERED = re.compile(r"\.(\d+)(\.gz)?$")
_DIGITS = re.compile(r"\d+")


@dataclass
class _File:
    """An open file being read: delivered up to `offset`; `buffer` holds what follows, without a newline yet."""

    name: str
    device: int
    inode: int
    read: Reader
    close: Callable[[], None]
    fd: int = -1
    offset: int = 0
    buffer: bytes = b""
    line_start: int = 0
    line_sha: str = ""

    @property
    def position(self) -> int:
        return self.offset + len(self.buffer)

    def checkpoint(self, tailed: str, known: set[Identity]) -> Checkpoint:
        return Checkpoint(
            tailed,
            self.device,
            self.inode,
            self.offset,
            self.line_start,
            self.line_sha,
            known=sorted(known),
            name=self.name,
        )


@dataclass(frozen=True)
class _Head:
    """What a backup is recognised by: its identity; whether it is gzip'd (then its first line alone says which
    generation it is a copy of); for a file starting with a hole, the identity older versions recorded."""

    identity: Identity
    compressed: bool
    legacy: Identity | None = None


@dataclass(frozen=True)
class _Backup:
    """A backup not read yet."""

    name: str
    key: Key
    head: _Head
    info: os.stat_result


class _Truncated(Exception):
    """The live file no longer holds the last delivered line, or the partial line read after it, where they
    were: it was truncated (and maybe written again past where we were)."""


def _open_plain(path: str) -> _File:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    info = os.fstat(fd)

    def read(position: int, size: int) -> bytes:
        return os.pread(fd, size, position)

    return _File(path, info.st_dev, info.st_ino, read, lambda: os.close(fd), fd=fd)


class _Inflated:
    """A gzip'd backup read at decompressed offsets through the intake's inflater: forward by reading on,
    backward by starting over (backups are read once, front to back, so going back is rare). After an error
    (corrupt or cut short) the next read starts over too, as where the inflater stopped is not known."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.raw = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.stream = open_gzip(self.raw, source=path)
        self.position = 0
        self.failed = False

    def read(self, position: int, size: int) -> bytes:
        if position < self.position or self.failed:
            self.raw.seek(0)
            self.stream = open_gzip(self.raw, source=self.path)
            self.position = 0
            self.failed = False
        try:
            while self.position < position:
                skipped = self.stream.read(min(CHUNK, position - self.position))
                if not skipped:
                    return b""
                self.position += len(skipped)
            data = self.stream.read(size)
        except BaseException:
            self.failed = True
            raise
        self.position += len(data)
        return data

    def close(self) -> None:
        self.raw.close()


def _open_any(path: str) -> _File:
    """A plain file, or a gzip'd backup read in decompressed offsets."""
    if not path.endswith(".gz"):
        return _open_plain(path)
    inflated = _Inflated(path)
    info = os.fstat(inflated.raw.fileno())
    return _File(path, info.st_dev, info.st_ino, inflated.read, inflated.close)


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _fingerprint_matches(file: _File, line_start: int, offset: int, sha: str) -> bool:
    if offset == 0 or not sha:
        return True
    try:
        data = file.read(line_start, offset - line_start)
    except (OSError, EOFError, GzipError):
        return False
    return len(data) == offset - line_start and line_digest(data) == sha


def _scheme(path: str, tailed: str) -> tuple[str, tuple[int, ...]]:
    """A backup's naming scheme (its name with runs of digits masked, `.gz` left out) and its rank in it, oldest
    first: logrotate's `audit.log.N` by number, highest first; the others (lumberjack's `audit-<time>.log`,
    logrotate's `audit.log-<date>`) by the numbers in their names, which are their times."""
    name = os.path.basename(path).removesuffix(".gz")
    numbers = tuple(int(run) for run in _DIGITS.findall(name))
    scheme = _DIGITS.sub("#", name)
    if name.startswith(f"{tailed}.") and name[len(tailed) + 1 :].isdigit():
        return scheme, (-int(name[len(tailed) + 1 :]),)
    return scheme, numbers


def _oldest_first(backups: list[_Backup], tailed: str) -> list[_Backup]:
    """Backups in the order they were rotated: by modification time, each naming scheme's backups then put in
    the order their names say (a compressed backup's modification time may be when it was compressed)."""
    ordered = sorted(backups, key=lambda backup: _age(backup.name, backup.info))
    places: dict[str, list[int]] = {}
    for index, backup in enumerate(ordered):
        places.setdefault(_scheme(backup.name, tailed)[0], []).append(index)
    result = list(ordered)
    for indices in places.values():
        members = sorted((ordered[index] for index in indices), key=lambda backup: _scheme(backup.name, tailed)[1])
        for index, member in zip(indices, members, strict=True):
            result[index] = member
    return result


def _age(path: str, info: os.stat_result) -> tuple[int, int, str]:
    """Oldest first: by modification time, then logrotate's number (`.2` is older than `.1`), then name
    (lumberjack's timestamps sort in time order); mtimes are only as fine as the kernel's clock tick."""
    numbered = _NUMBERED.search(os.path.basename(path))
    return (info.st_mtime_ns, -int(numbered.group(1)) if numbered else 0, os.path.basename(path))


def _after_hole(file: _File) -> int | None:
    """Where the data after a leading hole of NULs starts; None when there is none yet (or not within HOLE_MAX)."""
    position = HEAD
    if file.fd >= 0:
        try:
            position = max(position, os.lseek(file.fd, position, os.SEEK_DATA))
        except OSError as error:  # ENXIO: only the hole so far; otherwise holes are not reported: read through
            if error.errno == errno.ENXIO:
                return None
    while position < HOLE_MAX:
        data = file.read(position, min(CHUNK, HOLE_MAX - position))
        if not data:
            return None
        kept = data.lstrip(b"\x00")
        if kept:
            return position + len(data) - len(kept)
        position += len(data)
    return None


def _head_digest(file: _File) -> tuple[str, bool] | None:
    """The digest of the first line (at most 4 KiB), and whether the file starts with a hole; None while that
    line is still incomplete. Past a hole of 4 KiB or more (copy-truncate under a writer without O_APPEND) the
    first line after it is digested, as the hole itself is the same in every such file."""
    head = file.read(0, HEAD)
    marker = b""
    hole = len(head) == HEAD and not head.strip(b"\x00")
    if hole:
        start = _after_hole(file)
        if start is None:
            return (_HOLE_HEAD, True) if file.read(HOLE_MAX, 1) else None
        head, marker = file.read(start, HEAD), b"\x00"
    cut = head.find(b"\n")
    if cut < 0 and len(head) < HEAD:
        return None
    return line_digest(marker + (head if cut < 0 else head[: cut + 1])), hole


def _head(file: _File) -> _Head | None:
    digest = _head_digest(file)
    if digest is None:
        return None
    identity = (file.device, file.inode, digest[0])
    legacy = (file.device, file.inode, _HOLE_HEAD) if digest[1] and digest[0] != _HOLE_HEAD else None
    return _Head(identity, file.fd < 0, legacy)


def _identity(file: _File) -> Identity | None:
    head = _head(file)
    return None if head is None else head.identity


def _same_start(first: _File, second: _File) -> bool:
    """True when both files begin with the same bytes (up to 4 KiB, and at least one whole line)."""
    head = first.read(0, 4096)
    return bool(head) and b"\n" in head and second.read(0, len(head)) == head


def _copy_of(backup: _File, live: _File) -> bool:
    """True when `backup` is a copy of the generation `live` is reading (made, or being made, by copy-truncate):
    it holds the last delivered line at its place, or starts as the live file does."""
    if live.offset and _fingerprint_matches(backup, live.line_start, live.offset, live.line_sha):
        return True
    return _same_start(backup, live)


def _sibling_keys(path: str) -> list[tuple[str, Key]]:
    keys: list[tuple[str, Key]] = []
    for sibling in rotated_siblings(path):
        info = _stat(sibling)
        if info is not None:
            keys.append((sibling, (info.st_dev, info.st_ino)))
    return keys


def rotated_siblings(path: str) -> list[str]:
    """Backups of `path` in its directory: lumberjack `audit-<time>.log[.gz]`, logrotate `audit.log.1[.gz]`,
    `audit.log-<date>[.gz]`."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    found: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        other = entry.name
        if other == name or other.endswith(".tmp"):
            continue
        lumberjack = (
            bool(extension)
            and other.startswith(f"{stem}-")
            and (other.endswith(extension) or other.endswith(f"{extension}.gz"))
        )
        if (other.startswith(f"{name}.") or other.startswith(f"{name}-") or lumberjack) and entry.is_file():
            found.append(os.path.join(folder, other))
    return sorted(found)


class Tailer:
    """Tails one file into a sink; `poll_once` does one step (tests drive it), `run` loops until stopped."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sink: Sink,
        checkpoints: CheckpointStore,
        options: TailOptions | None = None,
    ) -> None:
        self.path = os.path.abspath(path)
        self.sink = sink
        self.checkpoints = checkpoints
        self.options = options or TailOptions()
        self.stats = TailStats()
        self._current: _File | None = None
        self._known: set[Identity] = set()
        self._heads: dict[Key, tuple[int, int, _Head | None]] = {}
        self._reported: set[tuple[int, int, int]] = set()
        self._retry_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ----- delivery ---------------------------------------------------------------------------------------

    def _deliver(self, file: _File, block: bytes, start: int) -> None:
        """Hand the lines of `block` (ending at a line end) to the sink, then advance and checkpoint `file`."""
        lines = [line.lstrip(b"\x00") for line in block.split(b"\n")]
        lines = [line for line in lines if line.strip()]
        end = start + len(block)
        if lines:
            self.sink(TailBatch(file.name, start, lines))
            self.stats.lines += len(lines)
            self.stats.batches += 1
            last = block.rstrip(b"\n")
            cut = max(last.rfind(b"\n") + 1, len(last) - FINGERPRINT_MAX)
            file.line_start = start + cut
            file.line_sha = line_digest(block[cut:])
        file.offset = end
        if lines:
            self._save(file)

    def _consume(self, file: _File, data: bytes, *, final: bool) -> None:
        """Add freshly read bytes; deliver every whole line (and, when `final`, an unterminated last one)."""
        buffer = file.buffer + data if file.buffer else data
        cut = len(buffer) if final else buffer.rfind(b"\n") + 1
        if not cut:
            file.buffer = buffer
            return
        file.buffer = b""
        self._deliver(file, buffer[:cut], file.offset)
        file.buffer = buffer[cut:]

    @staticmethod
    def _truncated(file: _File) -> bool:
        """True when the last delivered line, or the partial line read after it, is no longer where it was."""
        return not _fingerprint_matches(file, file.line_start, file.offset, file.line_sha) or bool(
            file.buffer and file.read(file.offset, len(file.buffer)) != file.buffer
        )

    def _moved(self, file: _File) -> bool:
        """True when the tailed path no longer names `file` (renamed away; we hold it open, so its inode is not
        reused meanwhile)."""
        info = _stat(self.path)
        return info is None or (info.st_dev, info.st_ino) != (file.device, file.inode)

    def _read_live(self, file: _File) -> int:
        """Read what the live file has after our position; raises _Truncated if it was truncated meanwhile."""
        delivered = self.stats.lines
        while True:
            data = file.read(file.position, CHUNK)
            if not data:
                break
            if self._truncated(file):
                raise _Truncated
            self._consume(file, data, final=False)
            if len(data) < CHUNK:
                break
        return self.stats.lines - delivered

    def _finish(self, file: _File, *, wait: bool) -> None:
        """Read a file that is no longer the live one to its end (waiting a moment for a writer still on it; a
        gzip'd backup has none, and is read as far as it inflates when it is corrupt or cut short)."""
        if file.fd >= 0 and self._truncated(file):
            self._after_truncation(file, before=os.fstat(file.fd).st_mtime_ns)
        wait = wait and file.fd >= 0
        deadline = time.monotonic() + (self.options.rotate_grace if wait else 0.0)
        try:
            while True:
                while data := file.read(file.position, CHUNK):
                    self._consume(file, data, final=False)
                if not wait or time.monotonic() >= deadline:
                    break
                time.sleep(min(self.options.poll_interval, 0.05))
                if not file.buffer and not file.read(file.position, 1):
                    break
        except GzipError as error:
            self.stats.lost_rotations += 1
            log.warning(
                "%s: %s cannot be read past byte %d (%s); the rest of that generation is lost",
                self.path,
                file.name,
                file.position,
                error,
            )
        if file.buffer:
            self._consume(file, b"", final=True)

    # ----- rotation ---------------------------------------------------------------------------------------

    def _sibling_head(self, path: str, info: os.stat_result) -> _Head | None:
        """How a backup is recognised (None while its first line is incomplete, or a `.gz` is half written)."""
        key = (info.st_dev, info.st_ino)
        cached = self._heads.get(key)
        if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
            return cached[2]
        try:
            file = _open_any(path)
        except OSError:
            return None
        try:
            head = _head(file) if (file.device, file.inode) == key else None
        except (OSError, EOFError, GzipError):
            head = None
        finally:
            file.close()
        self._heads[key] = (info.st_mtime_ns, info.st_size, head)
        return head

    def _known_digests(self) -> set[str]:
        return {digest for _, _, digest in self._known if digest != _HOLE_HEAD}

    def _is_known(self, head: _Head, digests: set[str]) -> bool:
        """True for a backup already read (or older than the first look): the same file, or a compressed copy
        of a generation already read (a new inode, the same first line)."""
        if head.identity in self._known or (head.legacy is not None and head.legacy in self._known):
            return True
        return head.compressed and head.identity[2] in digests

    def _remember(self, file: _File) -> None:
        identity = _identity(file)
        if identity is not None:
            self._known.add(identity)

    def _all_identities(self) -> set[Identity]:
        found: set[Identity] = set()
        for sibling in rotated_siblings(self.path):
            info = _stat(sibling)
            head = self._sibling_head(sibling, info) if info is not None else None
            if head is not None:
                found.add(head.identity)
        return found

    def _save(self, file: _File) -> None:
        self.checkpoints.save(file.checkpoint(self.path, self._known))

    def _unread(self, exclude: set[Key], before: int | None = None) -> list[_Backup]:
        """The backups not read yet, oldest first; a generation both plain and gzip'd (being compressed) once,
        as its plain file. With `before`, only those modified no later than that."""
        digests = self._known_digests()
        found: list[_Backup] = []
        for sibling in rotated_siblings(self.path):
            info = _stat(sibling)
            if info is None or (info.st_dev, info.st_ino) in exclude:
                continue
            if before is not None and info.st_mtime_ns > before:
                continue
            head = self._sibling_head(sibling, info)
            if head is None or self._is_known(head, digests):
                continue
            found.append(_Backup(sibling, (info.st_dev, info.st_ino), head, info))
        plain = {backup.head.identity[2] for backup in found if not backup.head.compressed}
        compressed: set[str] = set()
        unread: list[_Backup] = []
        for backup in found:
            digest = backup.head.identity[2]
            if backup.head.compressed and digest != _HOLE_HEAD:
                if digest in plain or digest in compressed:
                    continue
                compressed.add(digest)
            unread.append(backup)
        return _oldest_first(unread, os.path.basename(self.path))

    def _read_missed(
        self,
        exclude: set[Key],
        live: _File | None = None,
        before: int | None = None,
        *,
        copies: bool = False,
        rotated: bool = False,
    ) -> None:
        """Read, oldest first, every backup not seen before, plain or gzip'd: generations rotated away between
        two looks (or while stopped).

        A copy of the generation the `live` file holds (its truncation not done, or not noticed yet) is left
        for the truncation to handle, and `live`'s position is checkpointed again after. With `before`, only
        backups modified no later than that (a file being finished) are read now; later ones after it.
        `copies`: the tailed file is still the same inode, so each backup that appeared is a copy made by a
        copy-truncate not seen as it happened, and counts as a truncation rather than a backup read. `rotated`:
        `live`'s rotation is being handled (it is read from its start next), so it having moved defers nothing.
        """
        backups = self._unread(exclude, before)
        if live is not None and backups and not rotated and (self._moved(live) or self._truncated(live)):
            # `live` was rotated (renamed or copy-truncated) since it was last looked at, so these backups may be
            # newer than its rest: the next look finishes it first, then reads them
            return
        read = False
        for backup in backups:
            try:
                file = _open_any(backup.name)
            except FileNotFoundError:
                continue
            try:
                if (file.device, file.inode) != backup.key:
                    continue
                try:
                    if live is not None and _copy_of(file, live):
                        continue
                except GzipError:
                    pass
                log.info("%s: reading %s, rotated before it was tailed", self.path, backup.name)
                self._finish(file, wait=False)
                if copies:
                    self.stats.truncations += 1
                else:
                    self.stats.backups_read += 1
                self._known.add(backup.head.identity)
                read = True
            finally:
                file.close()
        if read and live is not None:
            self._save(live)

    def _switch_to_new(self, old: _File) -> None:
        """After a rename: finish the old file, then any backup rotated after it, then start the new file."""
        self._finish(old, wait=True)
        self._remember(old)
        try:
            new: _File | None = _open_plain(self.path)
        except FileNotFoundError:
            new = None
        try:
            self._read_missed({(new.device, new.inode)} if new is not None else set())
        except BaseException:
            if new is not None:
                new.close()
            raise
        old.close()
        self.stats.renames += 1
        self._current = new
        if new is not None:
            self._save(new)

    def _find_copy(self, line_start: int, offset: int, sha: str, exclude: set[Key]) -> _File | None:
        """The backup holding the checkpointed line at the checkpointed place (a copy, or a compressed backup);
        those not read yet are tried first (a gzip'd one is inflated up to the place)."""
        if not sha:
            return None
        digests = self._known_digests()

        def known(sibling: str) -> bool:
            info = _stat(sibling)
            head = self._sibling_head(sibling, info) if info is not None else None
            return head is not None and self._is_known(head, digests)

        for sibling in sorted(rotated_siblings(self.path), key=known):
            try:
                candidate = _open_any(sibling)
            except OSError:
                continue
            if (candidate.device, candidate.inode) not in exclude and _fingerprint_matches(
                candidate, line_start, offset, sha
            ):
                candidate.offset, candidate.line_start, candidate.line_sha = offset, line_start, sha
                return candidate
            candidate.close()
        return None

    def _after_truncation(self, file: _File, before: int | None = None, *, watched: bool = True) -> None:
        """Copy-truncate: deliver the rest from the copy, and any later copy, then read the file from 0.

        `watched`: the file was followed up to now, so the later copies are further copy-truncates of it; on a
        restart they may as well be generations renamed away while stopped (their inode reused by the new file),
        and are counted as backups read.
        """
        self.stats.truncations += 1
        live = (file.device, file.inode)
        copy = self._find_copy(file.line_start, file.offset, file.line_sha, {live})
        if copy is not None:
            try:
                self._finish(copy, wait=False)
                self._remember(copy)
            finally:
                copy.close()
        elif file.offset:
            unread = self._unread({live}, before)
            self._report_lost(file.name, live, file.offset, "it was truncated (copy-truncate) or replaced", unread)
        file.offset, file.buffer, file.line_start, file.line_sha = 0, b"", 0, ""
        # a copy of what the file holds now (the next copy-truncate under way) is left for when that one is done
        self._read_missed({live}, file, before, copies=watched, rotated=True)
        self._save(file)

    # ----- starting and resuming --------------------------------------------------------------------------

    def _resume(self) -> _File | None:
        """Open where the checkpoint says, wherever that file went; or the live file when there is none."""
        saved = self.checkpoints.load(self.path)
        live = _stat(self.path)
        if saved is None:
            self._known = self._all_identities()
            if live is None:
                return None
            file = _open_plain(self.path)
            if not self.options.from_start:
                file.offset = self._last_line_end(file, live.st_size)
            return file
        self._known = {(device, inode, digest) for device, inode, digest in saved.known}
        position = (saved.offset, saved.line_start, saved.line_sha256)
        if live is not None and (live.st_dev, live.st_ino) == (saved.device, saved.inode):
            file = _open_plain(self.path)
            file.offset, file.line_start, file.line_sha = position
            if os.fstat(file.fd).st_size < saved.offset or not _fingerprint_matches(
                file, saved.line_start, saved.offset, saved.line_sha256
            ):
                self._after_truncation(file, watched=False)
            elif saved.offset == 0:
                self._read_missed({(file.device, file.inode)}, live=file)
            return file
        for sibling, key in _sibling_keys(self.path):
            if key != (saved.device, saved.inode):
                continue
            file = _open_any(sibling)
            if _fingerprint_matches(file, saved.line_start, saved.offset, saved.line_sha256):
                log.info("%s: resuming in %s, rotated while stopped", self.path, sibling)
                file.offset, file.line_start, file.line_sha = position
                if file.fd >= 0:
                    return file
                self._switch_to_new(file)
                return self._current
            file.close()
        exclude = {(live.st_dev, live.st_ino)} if live is not None else set()
        copy = self._find_copy(saved.line_start, saved.offset, saved.line_sha256, exclude)
        if copy is not None:
            log.info("%s: resuming in %s, copied while stopped", self.path, copy.name)
            try:
                self._finish(copy, wait=False)
                self._remember(copy)
            finally:
                copy.close()
        elif saved.offset:
            self._report_gone(saved, exclude)
        if live is None:
            return None
        file = _open_plain(self.path)
        self._read_missed({(file.device, file.inode)})
        self._save(file)
        return file

    def _report_gone(self, saved: Checkpoint, exclude: set[Key]) -> None:
        """The checkpointed file is nowhere, plain or compressed: what followed the checkpoint in it is lost."""
        if (saved.device, saved.inode, saved.offset) in self._reported:
            return
        self._reported.add((saved.device, saved.inode, saved.offset))
        self._report_lost(
            saved.name or "the checkpointed file",
            (saved.device, saved.inode),
            saved.offset,
            "it was rotated away while not tailed and is gone (deleted, or rotated past the backups kept)",
            self._unread(exclude),
        )

    def _report_lost(self, name: str, key: Key, offset: int, how: str, unread: list[_Backup]) -> None:
        self.stats.lost_rotations += 1
        log.warning(
            "%s: LOST the rest of %s (device %d, inode %d) after byte %d: %s, and no backup, plain or gzip'd, "
            "holds its line at that byte; reading on with %s",
            self.path,
            name,
            key[0],
            key[1],
            offset,
            how,
            ", then ".join([*(os.path.basename(backup.name) for backup in unread), "the live file from its start"]),
        )

    @staticmethod
    def _last_line_end(file: _File, size: int) -> int:
        start = max(0, size - CHUNK)
        data = file.read(start, size - start)
        return start + data.rfind(b"\n") + 1 if b"\n" in data else (0 if start == 0 else size)

    # ----- the loop ---------------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """One step: notice rotation, read what is new. Returns the number of lines delivered."""
        if time.monotonic() < self._retry_at:
            return 0
        before = self.stats.lines
        try:
            if self._current is None:
                self._current = self._resume()
                if self._current is None:
                    return self.stats.lines - before
            file = self._current
            live = _stat(self.path)
            if live is not None and (live.st_dev, live.st_ino) != (file.device, file.inode):
                self._switch_to_new(file)
                if self._current is None:
                    return self.stats.lines - before
                file = self._current
            elif live is not None and (live.st_size < file.position or self._truncated(file)):
                # by content, not size alone: truncated and written past our place again since the last look
                self._after_truncation(file)
            self._read_missed({(file.device, file.inode)}, live=file, copies=True)
            try:
                self._read_live(file)
            except _Truncated:
                self._after_truncation(file)
                self._read_live(file)
            info = _stat(self.path)
            same = info is not None and (info.st_dev, info.st_ino) == (file.device, file.inode)
            self.stats.lag_bytes = max(0, info.st_size - file.position) if info is not None and same else 0
        except Exception as error:
            if self._current is not None:
                self._current.buffer = b""
            self.stats.failures += 1
            self._retry_at = time.monotonic() + self.options.retry_delay
            log.warning("%s: %s; retrying in %.1f s", self.path, error, self.options.retry_delay)
        return self.stats.lines - before

    def run(self, stop: threading.Event | None = None) -> None:
        """Poll until `stop` is set (or `stop()` is called)."""
        stop = stop or self._stop
        while not stop.is_set():
            delivered = self.poll_once()
            if not delivered:
                stop.wait(self.options.poll_interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"kubetrail-tail-{Path(self.path).name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current step; what was delivered is checkpointed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._current is not None:
            with contextlib.suppress(OSError):
                self._current.close()
            self._current = None


class PipelineSink:
    """Decodes tailed lines through the intake and hands them to the pipeline (rejections become dead letters)."""

    def __init__(self, pipeline: Pipeline | Store, cluster: str) -> None:
        self.pipeline = pipeline if isinstance(pipeline, Pipeline) else Pipeline(pipeline)
        self.cluster = cluster
        self.rejected = 0

    def __call__(self, batch: TailBatch) -> None:
        decoded = Batch()
        position = batch.offset
        source = batch.path
        for line in batch.lines:
            add_line(decoded, line, f"{source}@~{position}", None)
            position += len(line) + 1
        self.pipeline.accept(decoded, self.cluster, source=source)
        self.rejected += len(decoded.rejected)
