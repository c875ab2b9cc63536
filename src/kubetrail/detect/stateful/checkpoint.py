"""Checkpoints of stateful detection: a versioned msgspec document written atomically, read back on restart."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING, Any

import msgspec

from kubetrail.detect.errors import DetectError
from kubetrail.detect.stateful.runner import thaw_key

if TYPE_CHECKING:
    from kubetrail.detect.stateful.detector import StatefulDetector

FORMAT = "kubetrail-stateful"
VERSION = 1


class CheckpointError(DetectError):
    """A checkpoint that cannot be read: not ours, a newer format, or damaged."""


class RuleCheckpoint(msgspec.Struct, forbid_unknown_fields=False):
    """One rule's state: every key (least recently used first) with its last-touched time and state."""

    signature: str
    evictions: int = 0
    expired: int = 0
    alerts: int = 0
    started_ns: int | None = None
    entries: list[tuple[list[Any], int, Any]] = []


class Checkpoint(msgspec.Struct):
    """All stateful detection state at one point of the event stream."""

    format: str
    version: int
    watermark_ns: int
    rules: dict[str, RuleCheckpoint]
    events: int = 0


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def encode_checkpoint(detector: StatefulDetector) -> bytes:
    """The detector's whole state as bytes (JSON)."""
    rules: dict[str, RuleCheckpoint] = {}
    for runner in detector.runners:
        entries = [
            ([_plain(part) for part in key], touched, runner.encode(state))  # type: ignore[attr-defined]
            for key, touched, state in runner.store.items()
        ]
        rules[runner.name] = RuleCheckpoint(
            signature=runner.signature,
            evictions=runner.store.evictions,
            expired=runner.store.expired,
            alerts=runner.alerts,
            started_ns=runner.started_ns,
            entries=entries,
        )
    document = Checkpoint(FORMAT, VERSION, detector.watermark_ns, rules, detector.events)
    return msgspec.json.encode(document)


def decode_checkpoint(detector: StatefulDetector, data: bytes, source: str = "") -> None:
    """Replace the detector's state with a checkpoint's; rules changed in kind or shape start empty."""
    try:
        head = msgspec.json.decode(data, type=dict[str, Any])
    except msgspec.DecodeError as error:
        raise CheckpointError(f"not a stateful checkpoint: {error}", source=source) from None
    if head.get("format") != FORMAT:
        raise CheckpointError("not a stateful checkpoint", source=source, hint="pass the file save() wrote")
    if head.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint format version {head.get('version')!r} is not supported (this build reads {VERSION})",
            source=source,
            hint="delete the checkpoint to start with empty state",
        )
    try:
        document = msgspec.json.decode(data, type=Checkpoint)
    except msgspec.ValidationError as error:
        raise CheckpointError(f"damaged checkpoint: {error}", source=source) from None
    detector.watermark_ns = document.watermark_ns
    detector.events = document.events
    for runner in detector.runners:
        store = runner.store
        saved = document.rules.get(runner.name)
        fresh = type(store)(store.max_keys)
        runner.store = fresh
        runner.alerts = 0
        runner.started_ns = None
        if saved is None or saved.signature != runner.signature:
            continue
        try:
            for key, touched, state in saved.entries:
                fresh.put(thaw_key(key), touched, runner.decode(state))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"damaged state of rule {runner.name!r}: {error}", source=source) from None
        fresh.evictions += saved.evictions
        fresh.expired = saved.expired
        runner.alerts = saved.alerts
        runner.started_ns = saved.started_ns


def save_checkpoint(detector: StatefulDetector, path: str) -> None:
    """Write the checkpoint to `path` so that a crash leaves the old file or the new one, never a mix."""
    data = encode_checkpoint(detector)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".stateful-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(detector: StatefulDetector, path: str) -> None:
    """Restore the detector from the checkpoint at `path`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint: {error.strerror}", source=path) from None
    decode_checkpoint(detector, data, path)
