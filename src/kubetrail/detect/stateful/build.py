"""Turn a rule file's stateful form into a spec, once its conditions and output are compiled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetrail.detect.output import OutputFormat
from kubetrail.detect.priority import Priority
from kubetrail.detect.stateful.ruletext import StatefulText
from kubetrail.detect.stateful.spec import (
    Admits,
    FirstSeenSpec,
    Predicate,
    SequenceSpec,
    StatefulSpec,
    ThresholdSpec,
    ValueCountSpec,
)


@dataclass(frozen=True, slots=True)
class RuleParts:
    """What the compiler made of a stateful rule's common keys."""

    name: str
    match: Predicate
    priority: Priority
    output: OutputFormat
    desc: str
    tags: tuple[str, ...]
    mitre: tuple[str, ...]
    threat_matrix: tuple[str, ...]
    source: str
    admits: Admits | None = None


def build_spec(text: StatefulText, parts: RuleParts, steps: list[Predicate]) -> StatefulSpec:
    """The spec of a stateful rule (steps: the compiled step conditions of a sequence, in order)."""
    common: dict[str, Any] = {
        "name": parts.name,
        "match": parts.match,
        "priority": parts.priority,
        "output": parts.output,
        "desc": parts.desc,
        "tags": parts.tags,
        "mitre": parts.mitre,
        "threat_matrix": parts.threat_matrix,
        "source": parts.source,
        "max_keys": text.max_keys,
        "admits": parts.admits,
    }
    if text.kind == "threshold" and text.distinct is not None:
        return ValueCountSpec(
            group_by=text.group_by, field=text.distinct, window_s=text.window_s, count=text.count, **common
        )
    if text.kind == "threshold":
        return ThresholdSpec(group_by=text.group_by, window_s=text.window_s, count=text.count, **common)
    if text.kind == "sequence":
        return SequenceSpec(
            by=text.group_by, steps=tuple(steps), within_s=text.within_s, ordered=text.ordered, **common
        )
    return FirstSeenSpec(key=text.key, baseline_s=text.baseline_s, learn_s=text.learn_s, **common)
