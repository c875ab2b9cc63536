"""Put Sigma rules into a compiled rule set: detection rules beside Falco's, correlations beside the stateful rules.

Sigma rules become ordinary compiled rules after the Falco rules (so `--rule-matching first` tries Falco's
rules first, and `--min-priority` applies); correlations join the rule set's stateful rules.
"""

from __future__ import annotations

from kubetrail.detect.compiler import CompiledRule, RuleSet
from kubetrail.detect.sigma.loader import SigmaRules
from kubetrail.detect.sigma.output import sigma_output
from kubetrail.detect.sigma.rule import SigmaMatch

SOURCE = "k8s_audit"


def compiled_rule(rule: SigmaMatch, position: int) -> CompiledRule:
    """A Sigma rule as the engine runs rules: indexed by the verbs it requires; its residual is its whole predicate."""
    return CompiledRule(
        name=rule.title,
        priority=rule.priority,
        source=SOURCE,
        desc=rule.description,
        tags=rule.tags,
        enabled=rule.alerts,
        output=sigma_output(rule),
        predicate=rule.predicate,
        constraints={"verb": rule.verbs} if rule.verbs else {},
        position=position,
        residual=rule.predicate,
        mitre=rule.mitre,
    )


def add_sigma(ruleset: RuleSet, sigma: SigmaRules) -> RuleSet:
    """The rule set with the Sigma rules appended, their correlations added and their notices kept."""
    start = len(ruleset.rules)
    ruleset.rules.extend(compiled_rule(rule, start + index) for index, rule in enumerate(sigma.rules))
    ruleset.stateful.extend(sigma.correlations)
    ruleset.notices.extend(sigma.notices)
    return ruleset
