"""Sigma rules for Kubernetes audit events: parsed with pySigma, compiled to closures, evaluated in-process.

rules = load_sigma([RuleSource("k8s_exec.yml", text)])
engine = Engine(ruleset, detectors=[rules.detector()])

Only `logsource: {product: kubernetes, service: audit}` rules load; correlation rules (event_count,
value_count, temporal, temporal_ordered) run as stateful rules.
"""

from __future__ import annotations

from kubetrail.detect.sigma.detector import SigmaDetector
from kubetrail.detect.sigma.errors import SigmaRuleError
from kubetrail.detect.sigma.fields import ALIASES, field_getter
from kubetrail.detect.sigma.loader import SigmaRules, is_sigma, load_sigma
from kubetrail.detect.sigma.rule import LEVEL_PRIORITY, SigmaMatch, level_priority, mitre_ids

__all__ = [
    "ALIASES",
    "LEVEL_PRIORITY",
    "SigmaDetector",
    "SigmaMatch",
    "SigmaRuleError",
    "SigmaRules",
    "field_getter",
    "is_sigma",
    "level_priority",
    "load_sigma",
    "mitre_ids",
]
