"""The built-in set over generated traffic: silent on a busy cluster's benign hour, loud on attack scenarios."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pytest

from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, load_ruleset, rule_sources
from kubetrail.detect.requests import OncePerRequest
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import Event
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.record import record

# What each scenario does (see kubetrail.emit.generator.scenarios) and the rules that must notice it.
EXPECTED = {
    "exec-into-pod": {
        "Exec Or Attach Into Pod",
        "Exec Into Kube-System Pod",
        "Service Account Token Read Via Exec",
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


def _alerts(config: GeneratorConfig, events: Iterable[Event] | None = None) -> Counter[str]:
    ruleset = load_ruleset(rule_sources([BUILTIN]))
    engine = Engine(ruleset, matching=Matching.ALL)  # stateful rules run inside the engine
    fired: Counter[str] = Counter()
    for event in generate(config) if events is None else events:
        fired.update(alert.rule for alert in engine.detect(EventContext(event)))
    return fired


def _recorded(config: GeneratorConfig, preset: str) -> Iterable[Event]:
    """The stream as an API server running one of kubetrail's audit policy presets would write it."""
    evaluate = compile_policy(load_preset(preset).policy).evaluate_event
    for event in generate(config):
        kept = record(event, evaluate(event))
        if kept is not None:
            yield kept


def test_a_benign_hour_of_a_busy_cluster_raises_no_alert() -> None:
    # Controllers, the scheduler, kubelets reading their pods' secrets and configmaps, leader-election leases,
    # health probes, CI deploying, people reading logs and patching deployments (and being refused nodes).
    fired = _alerts(GeneratorConfig(seed=3, nodes=6, rate=20.0, duration=3600.0))
    assert fired == Counter()


def test_a_benign_day_raises_no_alert_after_the_learning_period_either() -> None:
    # 26 hours of a smaller cluster, run as every command runs rules (once per request): the first-seen rules
    # learn for 24 hours and then watch, so the last two hours check that a day of routine is not "new".
    ruleset = load_ruleset(rule_sources([BUILTIN]))
    engine = OncePerRequest(Engine(ruleset, matching=Matching.ALL))
    fired: Counter[str] = Counter()
    config = GeneratorConfig(seed=11, nodes=6, rate=1.0, duration=26 * 3600.0)
    for event in generate(config):
        fired.update(alert.rule for alert in engine.detect(EventContext(event)))
    assert fired == Counter()


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_attack_scenarios_raise_the_expected_rules(scenario: str) -> None:
    fired = _alerts(GeneratorConfig(seed=5, nodes=3, rate=5.0, duration=900.0, scenarios=(scenario,)))
    missing = EXPECTED[scenario] - set(fired)
    assert not missing, f"{scenario}: {sorted(missing)} did not fire (fired: {dict(fired)})"


def test_the_attacks_are_still_seen_under_the_recommended_audit_policy() -> None:
    # The recommended policy records secrets at Metadata level, drops RequestReceived and keeps bodies
    # only where they matter: every rule the scenarios trip must still have what it reads.
    config = GeneratorConfig(seed=5, nodes=3, rate=5.0, duration=900.0, scenarios=("all",))
    fired = _alerts(config, _recorded(config, "recommended"))
    expected = set().union(*EXPECTED.values())
    assert expected - set(fired) == set()
