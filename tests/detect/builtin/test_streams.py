"""The built-in set over generated traffic: silent on a busy cluster's benign hour, loud on attack scenarios."""

from __future__ import annotations

from collections import Counter

import pytest

from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, load_ruleset, rule_sources
from kubetrail.emit.generator import GeneratorConfig, generate

# What each scenario does (see kubetrail.emit.generator.scenarios) and the rules that must notice it.
EXPECTED = {
    "exec-into-pod": {
        "Exec Or Attach Into Pod",
        "Exec Into Kube-System Pod",
        "Credential File Read Via Exec",
        "Interactive Shell Exec In Pod",
    },
    "privileged-pod": {
        "Privileged Container Started",
        "Sensitive Host Path Mounted",
        "Pod Shares Host Namespaces",
        "Pod Created In System Namespace",
    },
    "secret-harvesting": {
        "Secrets Listed Across Namespaces",
        "Secrets Listed By Workload Service Account",
        "Secret Read With Scripting Client",
        "Burst Of Secret Reads",
    },
    "rbac-escalation": {
        "Binding To Cluster-Admin",
        "Role With Powerful Permissions",
        "RBAC Changed By Service Account",
        "Forbidden Write Attempt",
    },
    "anonymous-access": {"Burst Of Unauthenticated Requests From Address"},
    "token-theft": {
        "Service Account Token Requested",
        "System Identity Used From Public Address",
        "Secret Read With Scripting Client",
    },
    "permission-enumeration": {
        "Permission List Requested",
        "Burst Of Denied Requests By Identity",
        "Discovery Across Many Resource Types",
    },
}


def _alerts(config: GeneratorConfig) -> Counter[str]:
    ruleset = load_ruleset(rule_sources([BUILTIN]))
    engine = Engine(ruleset, matching=Matching.ALL)  # stateful rules run inside the engine
    fired: Counter[str] = Counter()
    for event in generate(config):
        fired.update(alert.rule for alert in engine.detect(EventContext(event)))
    return fired


def test_a_benign_hour_of_a_busy_cluster_raises_no_alert() -> None:
    # Controllers, the scheduler, kubelets reading their pods' secrets and configmaps, leader-election leases,
    # health probes, CI deploying, people reading logs and patching deployments (and being refused secrets).
    fired = _alerts(GeneratorConfig(seed=3, nodes=6, rate=20.0, duration=3600.0))
    assert fired == Counter()


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_attack_scenarios_raise_the_expected_rules(scenario: str) -> None:
    fired = _alerts(GeneratorConfig(seed=5, nodes=3, rate=5.0, duration=900.0, scenarios=(scenario,)))
    missing = EXPECTED[scenario] - set(fired)
    assert not missing, f"{scenario}: {sorted(missing)} did not fire (fired: {dict(fired)})"
