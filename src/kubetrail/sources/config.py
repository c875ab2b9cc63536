"""serve's `sources:` entries, checked into typed specs before anything starts.

    sources:
      - type: eks-cloudwatch          # one of SOURCE_TYPES
        cluster: prod                 # the cluster label (default: from the log group, else serve's `cluster`)
        log-group: /aws/eks/prod/cluster
        region: eu-west-1             # default: the AWS SDK's chain (AWS_REGION, the profile)
        poll-interval: 5s

A cloud's module registers its type in SOURCE_TYPES with a parser taking an `Entry` (the mapping, with typed
getters whose errors name the file and key) and returning a spec whose `open(pipeline, checkpoints)` builds the
Source. The module is imported only when an entry of its type is configured; its SDK only when it opens.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubetrail.errors import SettingError
from kubetrail.pipeline import Pipeline
from kubetrail.sources.base import Source
from kubetrail.sources.checkpoint import SourceCheckpoints
from kubetrail.store import StoreError, check_cluster

SOURCE_TYPES: dict[str, str] = {
    "eks-cloudwatch": "kubetrail.sources.eks:parse_spec",
    "gke-pubsub": "kubetrail.sources.gke:parse_spec",
    "aks-storage": "kubetrail.sources.aks_storage:parse_spec",
    "aks-eventhub": "kubetrail.sources.aks_eventhub:parse_spec",
}
"""Source type → `module:function` parsing its entry."""
_COMMON_KEYS = ("type", "name", "cluster")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class SourceConfigError(SettingError):
    """A `sources:` entry that cannot be used; names the file and key (`sources[0].log-group`)."""


class SourceSpec(Protocol):
    """What a parsed entry is: enough to open its source once the store is open."""

    type: str
    name: str
    cluster: str | None

    def open(self, pipeline: Pipeline, checkpoints: SourceCheckpoints) -> Source: ...


@dataclass(frozen=True)
class Entry:
    """One `sources:` entry with where it was written, for typed reads and errors that say where."""

    values: Mapping[str, Any]
    file: str
    field: str
    default_cluster: str

    def error(self, key: str, message: str, hint: str = "") -> SourceConfigError:
        return SourceConfigError(message, file=self.file, field=f"{self.field}.{key}" if key else self.field, hint=hint)

    def check_keys(self, known: tuple[str, ...]) -> None:
        allowed = (*_COMMON_KEYS, *known)
        for key in self.values:
            if key not in allowed:
                raise self.error(str(key), f"unknown key {key!r}", hint=f"known keys: {', '.join(allowed)}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
            raise self.error(key, f"{value!r} is not a non-empty string")
        return str(value).strip()

    def seconds(self, key: str, default: float) -> float:
        """A positive duration: `5s`, `500ms`, `1m`, or a number of seconds."""
        value = self.values.get(key)
        if value is None:
            return default
        match = _SECONDS.match(str(value)) if not isinstance(value, bool) else None
        number = float(match[1]) * _UNIT[match[2]] if match else 0.0
        if number <= 0:
            raise self.error(key, f"{value!r} is not a positive duration", hint="e.g. 5s, 500ms, 1m")
        return number

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = str(self.values.get(key, choices[0]))
        if value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def cluster(self, fallback: str | None = None) -> str:
        """The `cluster:` of the entry, else `fallback` (what the source itself names), else serve's."""
        value = self.text("cluster") or fallback or self.default_cluster
        try:
            return check_cluster(value)
        except StoreError as error:
            raise self.error("cluster", error.message, error.hint) from None


def _parser(kind: str) -> Callable[[Entry], SourceSpec]:
    module, _, function = SOURCE_TYPES[kind].partition(":")
    parser: Callable[[Entry], SourceSpec] = getattr(importlib.import_module(module), function)
    return parser


def parse_sources(entries: object, *, file: str, default_cluster: str) -> tuple[SourceSpec, ...]:
    """Every entry of `sources:` as a spec; SourceConfigError naming the file and key for the first bad one."""
    items = entries if isinstance(entries, list | tuple) else [entries]
    specs: list[SourceSpec] = []
    for index, values in enumerate(items):
        where = f"sources[{index}]"
        if not isinstance(values, Mapping):
            raise SourceConfigError("each source is a mapping with a `type`", file=file, field=where)
        kind = values.get("type")
        if kind not in SOURCE_TYPES:
            raise SourceConfigError(
                f"unknown source type {kind!r}",
                file=file,
                field=f"{where}.type",
                hint=f"one of {', '.join(SOURCE_TYPES)}",
            )
        specs.append(_parser(str(kind))(Entry(values, file, where, default_cluster)))
    names = [spec.name for spec in specs]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise SourceConfigError(
                f"two sources are named {name!r}", file=file, field=f"sources[{index}]", hint="set a distinct `name:`"
            )
    return tuple(specs)
