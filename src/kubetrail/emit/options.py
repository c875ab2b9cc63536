"""The `--audit-log-*` options of kube-apiserver (v1.37): defaults, validation messages, and the backend they build.

Defaults: no path (log backend off), `json` format, maxsize 100 MB, maxbackup 100 and maxage 366
days (since 1.36, kubernetes/kubernetes#136478; before, 0 and 0: keep every backup), no
compression, mode `blocking` (write before answering, errors ignored), batch options as the
apiserver's log defaults (buffer 10000, batches of 1, no throttle), truncation off (100 KiB per
event, 10 MiB per batch when on), version audit.k8s.io/v1. An explicit 0 turns a limit off:
maxsize 0 is no rotation (lumberjack is handed MaxInt32 MB; before 1.36 it meant 100 MB), maxbackup
0 and maxage 0 prune no backup by count or by age. The backend is built as the apiserver builds
it: log → mode wrapper → truncation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.logbackend import ALLOWED_FORMATS, FORMAT_JSON, PLUGIN_NAME, LogBackend, RecordWriter, StreamWriter
from kubetrail.emit.rotation import RotatingFile
from kubetrail.emit.truncate import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_EVENT_SIZE, TruncateConfig, Truncating
from kubetrail.errors import KubetrailError
from kubetrail.model.event import Event

MODE_BATCH = "batch"
MODE_BLOCKING = "blocking"
MODE_BLOCKING_STRICT = "blocking-strict"
ALLOWED_MODES = (MODE_BATCH, MODE_BLOCKING, MODE_BLOCKING_STRICT)
KNOWN_GROUP_VERSIONS = ("audit.k8s.io/v1",)
DEFAULT_MAX_SIZE_MB = 100
DEFAULT_MAX_BACKUPS = 100
DEFAULT_MAX_AGE_DAYS = 366
UNLIMITED_MAX_SIZE_MB = 2**31 - 1  # Go's math.MaxInt32: what `--audit-log-maxsize=0` hands lumberjack


class OptionsError(KubetrailError):
    """Audit log options the apiserver would refuse at start-up."""

    def __init__(self, message: str, *, flag: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.flag = flag
        self.hint = hint or "see `kube-apiserver --help` for the --audit-log-* flags"


@dataclass(frozen=True)
class AuditLogOptions:
    """One field per `--audit-log-*` flag, with the apiserver's defaults."""

    path: str = ""
    max_age: int = DEFAULT_MAX_AGE_DAYS
    max_backups: int = DEFAULT_MAX_BACKUPS
    max_size: int = DEFAULT_MAX_SIZE_MB
    format: str = FORMAT_JSON
    compress: bool = False
    version: str = "audit.k8s.io/v1"
    mode: str = MODE_BLOCKING
    batch: BatchConfig = field(default_factory=BatchConfig.for_log)
    truncate_enabled: bool = False
    truncate_max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    truncate_max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    @property
    def enabled(self) -> bool:
        """The log backend is on exactly when a path is given."""
        return self.path != ""

    @property
    def rotates(self) -> bool:
        """False for `--audit-log-maxsize=0`: the file is never rotated (kube-apiserver 1.36 and later)."""
        return self.max_size != 0

    @property
    def truncate_config(self) -> TruncateConfig:
        """The `--audit-log-truncate-max-*` sizes."""
        return TruncateConfig(max_event_size=self.truncate_max_event_size, max_batch_size=self.truncate_max_batch_size)

    def validate(self) -> list[str]:
        """Every problem the apiserver reports for these options (none when the backend is off)."""
        if not self.enabled:
            return []
        errors: list[str] = []
        if self.mode not in ALLOWED_MODES:
            errors.append(
                f'invalid audit {PLUGIN_NAME} mode {self.mode}, allowed modes are "{",".join(ALLOWED_MODES)}"'
            )
        elif self.mode == MODE_BATCH:
            try:
                self.batch.validate(PLUGIN_NAME)
            except BackendError as error:
                errors.append(str(error))
        try:
            self.truncate_config.validate(PLUGIN_NAME)
        except BackendError as error:
            errors.append(str(error))
        if self.version not in KNOWN_GROUP_VERSIONS:
            known = " ".join(f'"{version}"' for version in KNOWN_GROUP_VERSIONS)
            errors.append(f"invalid group version, allowed versions are [{known}]")
        if self.format not in ALLOWED_FORMATS:
            errors.append(f'invalid audit log format {self.format}, allowed formats are "{",".join(ALLOWED_FORMATS)}"')
        for flag, value in (("maxage", self.max_age), ("maxbackup", self.max_backups), ("maxsize", self.max_size)):
            if value < 0:
                errors.append(f"--audit-log-{flag} {value} can't be a negative number")
        return errors

    def writer(self, clock: Callable[[], datetime] | None = None) -> RecordWriter:
        """Stdout for `-`, else the rotating file (created 0600 in a 0700 directory first, as the apiserver does).

        With maxsize 0 the file gets MaxInt32 MB, as kube-apiserver 1.36 and later give lumberjack: it never rotates.
        """
        if self.path == "-":
            return StreamWriter()
        ensure_log_file(self.path)
        return RotatingFile(
            self.path,
            max_size_mb=self.max_size if self.rotates else UNLIMITED_MAX_SIZE_MB,
            max_backups=self.max_backups,
            max_age_days=self.max_age,
            compress=self.compress,
            clock=clock,
        )

    def build(self, clock: Callable[[], datetime] | None = None) -> Backend | None:
        """The configured backend (None when no path is set); raises OptionsError if the options are invalid."""
        if not self.enabled:
            return None
        errors = self.validate()
        if errors:
            raise OptionsError("; ".join(errors))
        backend: Backend = LogBackend(self.writer(clock), self.format)
        if self.mode == MODE_BLOCKING:
            backend = IgnoreErrors(backend)
        elif self.mode == MODE_BATCH:
            backend = Buffered(backend, self.batch, plugin=PLUGIN_NAME)
        if self.truncate_enabled:
            backend = Truncating(backend, self.truncate_config)
        return backend

    def to_flags(self) -> list[str]:
        """The kube-apiserver flags for these options (only those differing from the defaults)."""
        defaults = AuditLogOptions()
        flags: list[str] = []
        for flag, (name, _) in FLAGS.items():
            value, default = _get(self, name), _get(defaults, name)
            if value != default:
                shown = format_go_duration(value) if name == "batch.max_batch_wait" else _show(value)
                flags.append(f"--{flag}={shown}")
        return flags


def ensure_log_file(path: str) -> None:
    """Create the log's directory (0700) and the file (0600) if missing, as kube-apiserver does at start-up."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_APPEND | os.O_RDWR | os.O_CLOEXEC, 0o600))


class IgnoreErrors:
    """The blocking mode's wrapper: the delegate's failures are its own business, requests go on."""

    def __init__(self, delegate: Backend) -> None:
        self.delegate = delegate

    def process_events(self, events: Sequence[Event]) -> bool:
        self.delegate.process_events(events)
        return True

    def run(self) -> None:
        self.delegate.run()

    def shutdown(self) -> None:
        self.delegate.shutdown()

    def name(self) -> str:
        return f"ignoreErrors<{self.delegate.name()}>"


# --- flags ---------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration (`30s`, `1m30s`, `500ms`, `0`), in seconds."""
    body = text[1:] if text[:1] in "+-" else text
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    position = 0
    total = 0.0
    while position < len(body):
        found = _DURATION_PART.match(body, position)
        if found is None:
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        position = found.end()
    if not body:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


def format_go_duration(seconds: float) -> str:
    """A duration as Go prints it for whole units (`30s`, `1m0s`); fractions in seconds."""
    if seconds == 0:
        return "0s"
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


# flag -> (attribute path, parser); `batch.x` reaches into the BatchConfig
FLAGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "audit-log-path": ("path", str),
    "audit-log-maxage": ("max_age", _parse_int),
    "audit-log-maxbackup": ("max_backups", _parse_int),
    "audit-log-maxsize": ("max_size", _parse_int),
    "audit-log-format": ("format", str),
    "audit-log-compress": ("compress", _parse_bool),
    "audit-log-version": ("version", str),
    "audit-log-mode": ("mode", str),
    "audit-log-batch-buffer-size": ("batch.buffer_size", _parse_int),
    "audit-log-batch-max-size": ("batch.max_batch_size", _parse_int),
    "audit-log-batch-max-wait": ("batch.max_batch_wait", parse_go_duration),
    "audit-log-batch-throttle-enable": ("batch.throttle_enable", _parse_bool),
    "audit-log-batch-throttle-qps": ("batch.throttle_qps", float),
    "audit-log-batch-throttle-burst": ("batch.throttle_burst", _parse_int),
    "audit-log-truncate-enabled": ("truncate_enabled", _parse_bool),
    "audit-log-truncate-max-batch-size": ("truncate_max_batch_size", _parse_int),
    "audit-log-truncate-max-event-size": ("truncate_max_event_size", _parse_int),
}
_BOOLEAN_FLAGS = frozenset(flag for flag, (_, parse) in FLAGS.items() if parse is _parse_bool)


def _get(options: AuditLogOptions, name: str) -> Any:
    if name.startswith("batch."):
        return getattr(options.batch, name[len("batch.") :])
    return getattr(options, name)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_flags(args: Sequence[str], base: AuditLogOptions | None = None) -> AuditLogOptions:
    """Read `--audit-log-*` flags (`--flag=value`, `--flag value`, bare boolean flags) into options."""
    options = base or AuditLogOptions()
    top: dict[str, Any] = {}
    batch: dict[str, Any] = {}
    index = 0
    while index < len(args):
        argument = args[index]
        index += 1
        if not argument.startswith("--"):
            raise OptionsError(f"unexpected argument {argument!r}", hint="flags look like --audit-log-maxsize=100")
        flag, has_value, value = argument[2:].partition("=")
        if flag not in FLAGS:
            known = ", ".join(f"--{name}" for name in FLAGS)
            raise OptionsError(f"unknown flag: --{flag}", flag=flag, hint=f"known flags: {known}")
        if not has_value:
            if flag in _BOOLEAN_FLAGS:
                value = "true"
            elif index < len(args):
                value = args[index]
                index += 1
            else:
                raise OptionsError(f"flag needs an argument: --{flag}", flag=flag)
        name, parse = FLAGS[flag]
        try:
            parsed = parse(value)
        except ValueError as error:
            raise OptionsError(f'invalid argument "{value}" for "--{flag}" flag: {error}', flag=flag) from None
        if name.startswith("batch."):
            batch[name[len("batch.") :]] = parsed
        else:
            top[name] = parsed
    if batch:
        top["batch"] = replace(options.batch, **batch)
    return replace(options, **top)


__all__ = [
    "ALLOWED_MODES",
    "DEFAULT_MAX_AGE_DAYS",
    "DEFAULT_MAX_BACKUPS",
    "DEFAULT_MAX_SIZE_MB",
    "FLAGS",
    "UNLIMITED_MAX_SIZE_MB",
    "AuditLogOptions",
    "IgnoreErrors",
    "OptionsError",
    "ensure_log_file",
    "format_go_duration",
    "parse_flags",
    "parse_go_duration",
]
