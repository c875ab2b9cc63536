"""Detection: Falco-compatible rules (lists, macros, exceptions, overrides) compiled to Python predicates.

ruleset = load_ruleset(rule_sources(["k8s_audit_rules.yaml"]))
engine = Engine(ruleset, matching=Matching.FIRST)
for alert in engine.evaluate(event):
    print(alert.output)
"""

from __future__ import annotations

from collections.abc import Iterable

from kubetrail.detect.alert import Alert
from kubetrail.detect.collector import Collector, Notice
from kubetrail.detect.compiler import CompiledRule, RuleSet, compile_rules
from kubetrail.detect.context import EventContext
from kubetrail.detect.engine import Detector, Engine, Matching
from kubetrail.detect.errors import ConditionSyntaxError, DetectError, RuleCompileError, RuleLoadError
from kubetrail.detect.fields import FIELDS, FieldSpec
from kubetrail.detect.output import TimeFormat
from kubetrail.detect.priority import Priority
from kubetrail.detect.rulefile import RuleSource, read_rules
from kubetrail.detect.sources import BUILTIN, BUILTIN_RULES_DIR, rule_sources
from kubetrail.detect.stateful import StatefulDetector
from kubetrail.detect.timestamps import event_time_ns


def load_ruleset(sources: Iterable[RuleSource]) -> RuleSet:
    """Read rule files in order and compile them into one rule set (stateful rules in `ruleset.stateful`)."""
    from kubetrail.detect.sigma import split_sources  # Sigma files load beside Falco's

    falco, sigma = split_sources(sources)
    ruleset = compile_rules(read_rules(falco))
    if sigma:
        from kubetrail.detect.sigma import add_sigma, load_sigma

        add_sigma(ruleset, load_sigma(sigma))
    return ruleset


__all__ = [
    "BUILTIN",
    "BUILTIN_RULES_DIR",
    "FIELDS",
    "Alert",
    "Collector",
    "CompiledRule",
    "ConditionSyntaxError",
    "DetectError",
    "Detector",
    "Engine",
    "EventContext",
    "FieldSpec",
    "Matching",
    "Notice",
    "Priority",
    "RuleCompileError",
    "RuleLoadError",
    "RuleSet",
    "RuleSource",
    "StatefulDetector",
    "TimeFormat",
    "compile_rules",
    "event_time_ns",
    "load_ruleset",
    "read_rules",
    "rule_sources",
]
