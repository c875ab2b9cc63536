"""Sigma rules for Kubernetes audit events: parsed with pySigma, compiled to closures, evaluated in-process.

ruleset = load_ruleset(rule_sources(["k8s_audit_rules.yaml", "sigma/"]))  # Sigma files are recognised
engine = Engine(ruleset)

`logsource: {product: kubernetes, service: audit}` rules load, and `{product: gcp, service: gcp.audit}` rules,
which read GKE's Cloud Logging entries rebuilt from the events made of them (gcp.py); correlation rules (event_count,
value_count, temporal, temporal_ordered) run as stateful rules. pySigma is imported on first use of
a name that needs it, so loading Falco rules alone stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kubetrail.detect.sigma.errors import SigmaRuleError
from kubetrail.detect.sigma.sniff import is_sigma, split_sources

if TYPE_CHECKING:
    from kubetrail.detect.sigma.fields import ALIASES, field_getter
    from kubetrail.detect.sigma.loader import SigmaRules, load_sigma
    from kubetrail.detect.sigma.rule import LEVEL_PRIORITY, SigmaMatch, level_priority, mitre_ids
    from kubetrail.detect.sigma.ruleset import add_sigma

_LAZY = {
    "ALIASES": "fields",
    "field_getter": "fields",
    "SigmaRules": "loader",
    "load_sigma": "loader",
    "LEVEL_PRIORITY": "rule",
    "SigmaMatch": "rule",
    "level_priority": "rule",
    "mitre_ids": "rule",
    "add_sigma": "ruleset",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ALIASES",
    "LEVEL_PRIORITY",
    "SigmaMatch",
    "SigmaRuleError",
    "SigmaRules",
    "add_sigma",
    "field_getter",
    "is_sigma",
    "level_priority",
    "load_sigma",
    "mitre_ids",
    "split_sources",
]
