"""The policy simulation page's numbers: the store's most recent events replayed through a preset policy.

The store holds events as the cluster's own policy recorded them, so a candidate that asks for more detail
than was recorded is measured on what exists (a body the store never received cannot be counted); the page
says so. Everything else is `kubetrail policy simulate` on a bounded, recent sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubetrail.model import EventDecodeError, decode_event
from kubetrail.policy.describe import describe_rule
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import PRESETS, load_preset
from kubetrail.policy.simulate import Simulator

SAMPLE_EVENTS = 5000


@dataclass(frozen=True)
class RuleLine:
    """One policy rule's share of the sample."""

    index: int | None
    level: str
    requests: int
    events: int
    bytes: int
    selectors: str


@dataclass(frozen=True)
class PolicyView:
    """Per-rule counts, totals and the per-day estimate for one preset over the sample."""

    preset: str
    rules: list[RuleLine]
    input_events: int
    written_events: int
    written_bytes: int
    span_seconds: float
    bytes_per_day: float
    malformed: int
    under_recorded: int


def simulate_sample(preset: str, raw_events: Iterable[str | bytes]) -> PolicyView:
    """Replay the sample through `preset` as the apiserver would; `preset` must be one of PRESETS."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}")
    compiled = compile_policy(load_preset(preset).policy)
    simulator = Simulator(compiled)
    malformed = 0
    for raw in raw_events:
        try:
            simulator.add(decode_event(raw.encode() if isinstance(raw, str) else raw, source="store"))
        except EventDecodeError:
            malformed += 1
    report = simulator.report()
    rules = compiled.policy.rules
    lines = [
        RuleLine(
            stats.rule,
            str(stats.level.value),
            stats.requests,
            stats.events,
            stats.bytes,
            describe_rule(rules[stats.rule]) if stats.rule is not None else "(no rule matched)",
        )
        for stats in [*report.rules, report.unmatched]
    ]
    span = report.span_seconds
    return PolicyView(
        preset=preset,
        rules=lines,
        input_events=report.input_events,
        written_events=report.events,
        written_bytes=report.bytes,
        span_seconds=span,
        bytes_per_day=report.bytes_per_day(span) if span > 0 else 0.0,
        malformed=malformed,
        under_recorded=report.under_recorded,
    )
