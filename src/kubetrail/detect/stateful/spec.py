"""What a stateful rule is: a threshold, distinct-value count, sequence or first-seen spec, built once.

Specs are plain data around compiled callables, so rule files and Sigma correlations build the same
objects. Fields used as keys are named as in conditions (`ka.user.name`, `ka.uri.param[command]`) and
resolved to accessors here; a caller with its own field names passes `accessors` for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kubetrail.detect.codegen import build_key_function
from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Accessor, Value, accessor_for
from kubetrail.detect.output import OutputFormat, OutputFormatError, compile_output
from kubetrail.detect.priority import Priority

Predicate = Callable[[EventContext], bool]
# Whether an event with these (stage, verb, resource, subresource) values can match: lets a detector skip rules.
Admits = Callable[[tuple[object, ...]], bool]
Key = tuple[object, ...]
KeyFunction = Callable[[EventContext], Key]

NS_PER_SECOND = 1_000_000_000
DEFAULT_MAX_KEYS = 100_000
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FIELD_REF = re.compile(r"([A-Za-z0-9_.]+)(?:\[(.*)\])?")


class SpecError(ValueError):
    """A stateful spec that cannot work (bad duration, count, field); rule files add file and line."""


def parse_duration(text: object) -> int:
    """Seconds in a duration written `Ns`, `Nm`, `Nh` or `Nd` (e.g. `5m`, `30d`)."""
    found = _DURATION.fullmatch(str(text).strip())
    if found is None or int(found.group(1)) == 0:
        raise SpecError(f"invalid duration {text!r}: expected a positive number followed by s, m, h or d, e.g. 5m")
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest `Ns|Nm|Nh|Nd` spelling of a whole number of seconds (`300` -> `5m`)."""
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds}s"
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def field_accessor(name: str, accessors: Mapping[str, Accessor] | None = None) -> Accessor:
    """The accessor for a field reference as written in a condition (`ka.uri.param[command]`)."""
    if accessors is not None and name in accessors:
        return accessors[name]
    found = _FIELD_REF.fullmatch(name.strip())
    if found is None:
        raise SpecError(f"invalid field reference {name!r}")
    try:
        return accessor_for(found.group(1), found.group(2))
    except ValueError as error:
        raise SpecError(f"{name}: {error}") from None


def _freeze(value: Value) -> object:
    return tuple(value) if isinstance(value, list) else value


def key_function(fields: Sequence[str], accessors: Mapping[str, Accessor] | None = None) -> KeyFunction:
    """A function giving the tuple of the fields' values for an event (lists become tuples)."""
    if accessors is None or not any(name in accessors for name in fields):
        inline = build_key_function(fields)
        if inline is not None:
            return inline
    getters = tuple(field_accessor(name, accessors) for name in fields)
    if len(getters) == 1:
        (only,) = getters
        return lambda ctx: (_freeze(only(ctx)),)
    return lambda ctx: tuple(_freeze(get(ctx)) for get in getters)


def output_format(output: str | OutputFormat) -> OutputFormat:
    """A compiled output template (`%field` references resolved); plain text compiles to itself."""
    if isinstance(output, OutputFormat):
        return output
    try:
        return compile_output(output, accessor_for)
    except OutputFormatError as error:
        raise SpecError(f"invalid output: {error.message}") from None


@dataclass(frozen=True, kw_only=True)
class _Common:
    """What every stateful spec has: identity, selection, alert presentation and its key limit."""

    name: str
    match: Predicate
    priority: Priority = Priority.WARNING
    output: str | OutputFormat = ""
    desc: str = ""
    tags: tuple[str, ...] = ()
    mitre: tuple[str, ...] = ()
    threat_matrix: tuple[str, ...] = ()
    source: str = "k8s_audit"
    max_keys: int | None = None
    accessors: Mapping[str, Accessor] | None = field(default=None, repr=False, compare=False)
    admits: Admits | None = field(default=None, repr=False, compare=False)

    def _check_common(self) -> None:
        if not self.name:
            raise SpecError("a stateful rule needs a name")
        if self.max_keys is not None and self.max_keys < 1:
            raise SpecError(f"max_keys must be at least 1, not {self.max_keys}")


@dataclass(frozen=True, kw_only=True)
class ThresholdSpec(_Common):
    """Alert when `count` matching events with the same `group_by` values fall within `window_s` seconds.

    Sigma's `event_count` correlation; one alert per group per window.
    """

    group_by: tuple[str, ...] = ()
    window_s: float
    count: int

    def __post_init__(self) -> None:
        self._check_common()
        if self.window_s <= 0:
            raise SpecError(f"window must be positive, not {self.window_s}")
        if self.count < 1:
            raise SpecError(f"count must be at least 1, not {self.count}")


@dataclass(frozen=True, kw_only=True)
class ValueCountSpec(_Common):
    """Alert when matching events of one group show `count` distinct values of `field` within `window_s`.

    Sigma's `value_count` correlation (e.g. one user touching 10 namespaces in 10 minutes).
    """

    group_by: tuple[str, ...] = ()
    field: str
    window_s: float
    count: int

    def __post_init__(self) -> None:
        self._check_common()
        if self.window_s <= 0:
            raise SpecError(f"window must be positive, not {self.window_s}")
        if self.count < 1:
            raise SpecError(f"count must be at least 1, not {self.count}")


@dataclass(frozen=True, kw_only=True)
class SequenceSpec(_Common):
    """Alert when events matching each of `steps` occur for the same `by` values within `within_s` seconds.

    `ordered` steps must happen in the given order (Sigma's `temporal_ordered`); unordered ones in any
    order (Sigma's `temporal`). `match` filters every step's events.
    """

    by: tuple[str, ...] = ()
    steps: tuple[Predicate, ...]
    within_s: float
    ordered: bool = True

    def __post_init__(self) -> None:
        self._check_common()
        if len(self.steps) < 2:
            raise SpecError(f"a sequence needs at least two steps, not {len(self.steps)}")
        if self.within_s <= 0:
            raise SpecError(f"within must be positive, not {self.within_s}")


@dataclass(frozen=True, kw_only=True)
class FirstSeenSpec(_Common):
    """Alert when a matching event's `key` values were not seen in the last `baseline_s` seconds.

    Nothing fires during the first `learn_s` seconds after the state starts: the baseline is learnt.
    """

    key: tuple[str, ...]
    baseline_s: float
    learn_s: float = 0

    def __post_init__(self) -> None:
        self._check_common()
        if not self.key:
            raise SpecError("first_seen needs at least one key field")
        if self.baseline_s <= 0:
            raise SpecError(f"baseline must be positive, not {self.baseline_s}")
        if self.learn_s < 0:
            raise SpecError(f"learn must not be negative, not {self.learn_s}")


StatefulSpec = ThresholdSpec | ValueCountSpec | SequenceSpec | FirstSeenSpec
