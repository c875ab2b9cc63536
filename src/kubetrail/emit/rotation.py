"""A size-rotated log file with lumberjack's rules (gopkg.in/natefinch/lumberjack.v2 v2.2.1), as kube-apiserver uses it.

- The current file is `NAME.EXT`; a write that would take it over `max_size` MB (0 means 100 MB)
  first renames it to `NAME-<time>.EXT`, `<time>` being the rotation time formatted
  `2006-01-02T15-04-05.000` in UTC (local time only with `local_time`, which the apiserver does
  not set), then starts a new file. A single write larger than `max_size` is refused.
- On opening, an existing file is appended to unless this write would reach `max_size`.
- New files get mode 0600 (a rotated-away file's mode is kept); directories are created 0755.
- After each rotation, and when first opened, old files are milled in the background: beyond the
  `max_backups` newest (a backup and its `.gz` count once) and older than `max_age` days (by the
  time in their name) are removed; with `compress`, the rest are gzipped to `NAME-<time>.EXT.gz`
  (same mode) and the uncompressed file removed. With max_backups = max_age = 0 and no compress,
  nothing is ever removed.
kube-apiserver 1.36 and later never hand it `max_size` 0: `--audit-log-maxsize=0` becomes MaxInt32 MB,
a file that never rotates (`kubetrail.emit.options`); before 1.36 that flag meant lumberjack's 100 MB.
Deliberate difference: if a backup name is already taken (two rotations in one millisecond),
the time is advanced by a millisecond instead of overwriting that backup.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubetrail.emit.backend import BackendError

log = logging.getLogger("kubetrail.emit")

MEGABYTE = 1024 * 1024
DEFAULT_MAX_SIZE_MB = 100
COMPRESS_SUFFIX = ".gz"
NEW_FILE_MODE = 0o600
DIRECTORY_MODE = 0o755
_BACKUP_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})")


class RotationError(BackendError):
    """A write the rotating file refuses (larger than the maximum file size) or cannot do."""

    def __init__(self, message: str, *, path: str, hint: str = "") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.hint = hint


def go_ext(filename: str) -> str:
    """Go's filepath.Ext: from the last dot of the base name (`.log`), or empty."""
    base = os.path.basename(filename)
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""


def format_backup_time(moment: datetime) -> str:
    """`2006-01-02T15-04-05.000`: milliseconds truncated, not rounded."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}-{moment.minute:02d}-{moment.second:02d}.{moment.microsecond // 1000:03d}"
    )


def parse_backup_time(text: str) -> datetime | None:
    """The inverse of `format_backup_time`, strictly (as Go's time.Parse); always read as UTC, as lumberjack does."""
    found = _BACKUP_TIME.fullmatch(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, milli = (int(part) for part in found.groups())
    try:
        return datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Backup:
    """A rotated file found beside the current one, with the time in its name."""

    path: Path
    timestamp: datetime

    @property
    def compressed(self) -> bool:
        return self.path.name.endswith(COMPRESS_SUFFIX)


class RotatingFile:
    """An append-only file that rotates and cleans up like lumberjack; safe to share between threads."""

    def __init__(
        self,
        filename: str | os.PathLike[str],
        *,
        max_size_mb: int = 0,
        max_backups: int = 0,
        max_age_days: int = 0,
        compress: bool = False,
        local_time: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.filename = os.fspath(filename)
        self.max_size_mb = max_size_mb
        self.max_backups = max_backups
        self.max_age_days = max_age_days
        self.compress = compress
        self.local_time = local_time
        self._clock = clock or (lambda: datetime.now(UTC))
        self.max_bytes = (max_size_mb or DEFAULT_MAX_SIZE_MB) * MEGABYTE
        self.rotations = 0
        self._fd: int | None = None
        self._size = 0
        self._lock = threading.Lock()
        self._mill_cond = threading.Condition()
        self._mill_requested = 0
        self._mill_done = 0
        self._mill_thread: threading.Thread | None = None
        self._closing = False

    # --- writing -------------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        """Write one record; rotate first when it would not fit. Raises RotationError if it can never fit."""
        if len(data) > self.max_bytes:
            raise RotationError(
                f"write length {len(data)} exceeds maximum file size {self.max_bytes}",
                path=self.filename,
                hint="raise --audit-log-maxsize or enable truncation of large events",
            )
        self.write_records([data])
        return len(data)

    def write_records(self, records: Sequence[bytes]) -> int:
        """Write records in order, each as if written alone (rotation between them as needed).

        Consecutive records that fit are written with one system call. Returns how many
        records were refused for being larger than the maximum file size.
        """
        refused = 0
        limit = self.max_bytes
        with self._lock:
            pending = bytearray()
            for record in records:
                length = len(record)
                if length > limit:
                    refused += 1
                    log.error("write length %d exceeds maximum file size %d: %s", length, limit, self.filename)
                    continue
                if self._fd is None:
                    self._open_existing_or_new(length)
                if self._size + len(pending) + length > limit:
                    self._flush(pending)
                    self._rotate()
                pending += record
            self._flush(pending)
        return refused

    def _flush(self, pending: bytearray) -> None:
        if not pending:
            return
        assert self._fd is not None
        view = memoryview(pending)
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        finally:
            self._size += written
            view.release()
            del pending[:]

    def rotate(self) -> None:
        """Rotate now (as on SIGHUP): close, move aside, start a new file, mill old ones."""
        with self._lock:
            self._rotate()

    def _rotate(self) -> None:
        self._close_file()
        self._open_new()
        self.rotations += 1
        self._request_mill()

    def _open_new(self) -> None:
        directory = os.path.dirname(self.filename) or "."
        os.makedirs(directory, mode=DIRECTORY_MODE, exist_ok=True)
        mode = NEW_FILE_MODE
        try:
            info = os.stat(self.filename)
        except FileNotFoundError:
            info = None
        if info is not None:
            mode = stat.S_IMODE(info.st_mode)
            os.rename(self.filename, self._free_backup_name())
        self._fd = os.open(self.filename, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, mode)
        self._size = 0

    def _open_existing_or_new(self, write_length: int) -> None:
        self._request_mill()
        try:
            info = os.stat(self.filename)
        except FileNotFoundError:
            self._open_new()
            return
        if info.st_size + write_length >= self.max_bytes:
            self._rotate()
            return
        try:
            self._fd = os.open(self.filename, os.O_APPEND | os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            self._open_new()
            return
        self._size = info.st_size

    def backup_name(self, moment: datetime) -> str:
        """`dir/NAME-<time>.EXT` for a rotation at `moment`."""
        directory, base = os.path.split(self.filename)
        ext = go_ext(base)
        prefix = base[: len(base) - len(ext)]
        if not self.local_time:
            moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
        elif moment.tzinfo is not None:
            moment = moment.astimezone()
        return os.path.join(directory, f"{prefix}-{format_backup_time(moment)}{ext}")

    def _free_backup_name(self) -> str:
        moment = self._clock()
        name = self.backup_name(moment)
        while os.path.lexists(name) or os.path.lexists(name + COMPRESS_SUFFIX):
            moment += timedelta(milliseconds=1)
            name = self.backup_name(moment)
        return name

    def _close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def flush(self) -> None:
        """Records are written straight to the file (no user-space buffer); sync them to disk."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        """Close the file and wait for clean-up in progress."""
        with self._lock:
            self._close_file()
        self.wait_for_mill()
        with self._mill_cond:
            self._closing = True
            self._mill_cond.notify_all()
        if self._mill_thread is not None:
            self._mill_thread.join()
            self._mill_thread = None
        with self._mill_cond:
            self._closing = False

    # --- clean-up ------------------------------------------------------------------------------

    def backups(self) -> list[Backup]:
        """Rotated files beside the current one (lumberjack's naming only), newest first."""
        directory, base = os.path.split(self.filename)
        ext = go_ext(base)
        prefix = base[: len(base) - len(ext)] + "-"
        found: list[Backup] = []
        try:
            entries = list(os.scandir(directory or "."))
        except FileNotFoundError:
            return []
        for entry in entries:
            if entry.is_dir():
                continue
            name = entry.name
            if not name.startswith(prefix):
                continue
            for suffix in (ext, ext + COMPRESS_SUFFIX):
                if name.endswith(suffix) and len(name) >= len(prefix) + len(suffix):
                    moment = parse_backup_time(name[len(prefix) : len(name) - len(suffix)])
                    if moment is not None:
                        found.append(Backup(Path(entry.path), moment))
                        break
        found.sort(key=lambda backup: backup.timestamp, reverse=True)
        return found

    def mill_once(self) -> None:
        """Remove backups beyond max_backups and older than max_age, then compress the rest if asked."""
        if self.max_backups == 0 and self.max_age_days == 0 and not self.compress:
            return
        files = self.backups()
        remove: list[Backup] = []
        if 0 < self.max_backups < len(files):
            preserved: set[str] = set()
            remaining: list[Backup] = []
            for backup in files:
                name = backup.path.name
                preserved.add(name[: -len(COMPRESS_SUFFIX)] if backup.compressed else name)
                (remove if len(preserved) > self.max_backups else remaining).append(backup)
            files = remaining
        if self.max_age_days > 0:
            cutoff = self._clock() - timedelta(days=self.max_age_days)
            if cutoff.tzinfo is None:
                cutoff = cutoff.replace(tzinfo=UTC)
            remove += [backup for backup in files if backup.timestamp < cutoff]
            files = [backup for backup in files if backup.timestamp >= cutoff]
        first_error: OSError | None = None
        for backup in remove:
            try:
                os.remove(backup.path)
            except FileNotFoundError:
                pass
            except OSError as error:
                first_error = first_error or error
        if self.compress:
            for backup in files:
                if not backup.compressed:
                    try:
                        compress_file(backup.path, Path(str(backup.path) + COMPRESS_SUFFIX))
                    except OSError as error:
                        first_error = first_error or error
        if first_error is not None:
            raise first_error

    def _request_mill(self) -> None:
        if self.max_backups == 0 and self.max_age_days == 0 and not self.compress:
            return
        with self._mill_cond:
            self._mill_requested += 1
            if self._mill_thread is None:
                self._mill_thread = threading.Thread(target=self._mill_loop, name="kubetrail-log-mill", daemon=True)
                self._mill_thread.start()
            self._mill_cond.notify_all()

    def _mill_loop(self) -> None:
        while True:
            with self._mill_cond:
                while self._mill_done >= self._mill_requested and not self._closing:
                    self._mill_cond.wait()
                if self._mill_done >= self._mill_requested:
                    return
                target = self._mill_requested
            try:
                self.mill_once()
            except OSError as error:
                log.error("cleaning up rotated audit logs of %s: %s", self.filename, error)
            with self._mill_cond:
                self._mill_done = target
                self._mill_cond.notify_all()

    def wait_for_mill(self) -> None:
        """Block until every clean-up requested so far has run."""
        with self._mill_cond:
            target = self._mill_requested
            while self._mill_done < target:
                self._mill_cond.wait()


def compress_file(source: Path, target: Path) -> None:
    """Gzip `source` into `target` with the source's mode, then remove the source (lumberjack's compressLogFile)."""
    with open(source, "rb") as reader:
        mode = stat.S_IMODE(os.fstat(reader.fileno()).st_mode)
        fd = os.open(target, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | os.O_CLOEXEC, mode)
        try:
            with (
                open(fd, "wb") as raw,
                gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            ):
                while chunk := reader.read(1 << 20):
                    gz.write(chunk)
        except OSError:
            try:
                os.remove(target)
            except OSError as error:
                if error.errno != errno.ENOENT:
                    log.error("removing partial %s: %s", target, error)
            raise
    os.remove(source)
