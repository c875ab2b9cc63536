"""Refused attempts are reported as attempts: their own rules, at a lower priority, never as the thing done.

Pod Security admission refuses a pod it does not allow with 403 Forbidden, so the pod never runs; the
apiserver's audit event for that create carries the pod spec and the 403.
"""

from __future__ import annotations

from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, Priority, load_ruleset, rule_sources
from kubetrail.detect.requests import OncePerRequest
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import decode_document
from tests.detect.builtin.helpers import FIXTURES, engine_for, load_events

DONE_RULES = {
    "Privileged Container Started",
    "Sensitive Host Path Mounted",
    "Pod Shares Host Namespaces",
    "Container With Dangerous Capabilities",
}


def _alerts(directory: str, name: str) -> list[tuple[str, Priority, str | None]]:
    path = FIXTURES / directory / name
    engine = engine_for(path.parent)
    found = []
    for line in load_events(path):
        for event in decode_document(line):
            found += [(alert.rule, alert.priority, alert.outcome) for alert in engine.detect(EventContext(event))]
    return found


def test_a_refused_privileged_pod_is_an_attempt_at_a_lower_priority() -> None:
    refused = _alerts("privileged-container-started", "negative-refused.json")
    created = _alerts("privileged-container-started", "positive-1.json")
    assert [(rule, outcome) for rule, _, outcome in refused] == [("Dangerous Pod Spec Refused", "denied")]
    assert ("Privileged Container Started", Priority.ERROR, "succeeded") in created
    attempt = refused[0][1]
    assert all(priority.at_least(attempt) and priority != attempt for _, priority, _ in created)


def test_the_generated_attack_reports_the_refused_pod_as_an_attempt_only() -> None:
    # the privileged-pod scenario creates privileged pods and has one refused by Pod Security (403)
    engine = OncePerRequest(Engine(load_ruleset(rule_sources([BUILTIN])), matching=Matching.ALL))
    config = GeneratorConfig(seed=5, nodes=3, rate=5.0, duration=900.0, scenarios=("privileged-pod",))
    outcomes: dict[str, set[str | None]] = {}
    priorities: dict[str, Priority] = {}
    for event in generate(config):
        for alert in engine.detect(EventContext(event)):
            outcomes.setdefault(alert.rule, set()).add(alert.outcome)
            priorities[alert.rule] = alert.priority
    assert outcomes["Dangerous Pod Spec Refused"] == {"denied"}
    for rule in DONE_RULES & set(outcomes):
        assert outcomes[rule] == {"succeeded"}, rule
        assert priorities[rule].at_least(priorities["Dangerous Pod Spec Refused"])
        assert priorities[rule] != priorities["Dangerous Pod Spec Refused"]
