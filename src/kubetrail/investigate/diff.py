"""Differences between two versions of a Kubernetes object, as (path, before, after) changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Fields the apiserver changes on every write: not what anybody changed.
IGNORED = frozenset(
    {
        "/metadata/resourceVersion",
        "/metadata/managedFields",
        "/metadata/generation",
        "/metadata/creationTimestamp",
        "/metadata/uid",
        "/status",
    }
)
_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One changed value: `path` is a JSON pointer; `before`/`after` are None when absent."""

    path: str
    before: Any
    after: Any


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(before: Any, after: Any, path: str = "") -> list[Change]:
    """Leaf-level changes from `before` to `after` (lists are compared whole)."""
    if path in IGNORED:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[Change] = []
        for key in sorted(set(before) | set(after), key=str):
            changes.extend(
                _diff_value(before.get(key, _MISSING), after.get(key, _MISSING), f"{path}/{_escape(str(key))}")
            )
        return changes
    if before == after:
        return []
    return [Change(path or "/", before, after)]


def _diff_value(before: Any, after: Any, path: str) -> list[Change]:
    if path in IGNORED:
        return []
    if before is _MISSING:
        return [Change(path, None, after)]
    if after is _MISSING:
        return [Change(path, before, None)]
    return diff(before, after, path)
