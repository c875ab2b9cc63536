"""Refused attempts are reported as attempts: their own rules, at a lower priority, never as the thing done.

Pod Security admission refuses a pod it does not allow with 403 Forbidden, so the pod never runs; the
apiserver's audit event for that create carries the pod spec and the 403.

Which rules fire only on refusals is read from their conditions (built-in macros written out); which rules do
the same thing successfully is read from docs/rules-builtin.md's table of attempts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, Priority, load_ruleset, rule_sources
from kubetrail.detect.requests import OncePerRequest
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import decode_document
from tests.detect.builtin.helpers import (
    FIXTURES,
    WrittenRule,
    engine_for,
    expanded_condition,
    load_events,
    written_rules,
)

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


DOC = Path(__file__).resolve().parents[3] / "docs" / "rules-builtin.md"
TABLE = "**Attempts and what they attempt.**"
NONE = "—"
THE_FINDING = "— the refusal is the finding:"
# An outcome other than success, or a response code of 400 and above, in a positive test of the condition.
REFUSAL = re.compile(r"ka\.outcome (=|in) \(?(denied|failed)|ka\.response\.code (=|in) \(?[0-9, ]*\b[45][0-9][0-9]\b")
SUCCESS = ("ka.outcome = succeeded", "ka.response.code = 101")
RULES = {rule.name: rule for rule in written_rules()}


def _attempt_table() -> dict[str, tuple[str, str]]:
    """The table's rows: attempt rule → (priority, the same thing done)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(TABLE)
    rows = {}
    for line in text[start : text.index("\n## ", start)].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0] not in ("Attempt", "---"):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


# A refusal the condition rules out (`not kt_denied`): the rule fires on what was not refused.
NEGATED = re.compile(r"not \((ka\.outcome|ka\.response\.code) [^()]*\)")


def _requires_refusal(rule: WrittenRule) -> bool:
    condition = NEGATED.sub("", expanded_condition(rule))
    return bool(REFUSAL.search(condition)) and not any(text in condition for text in SUCCESS)


def _rules_out_refusal(rule: WrittenRule) -> bool:
    """The condition needs success, or everything but a refusal (a kubelet reached through the API server that
    answered 404 was still reached)."""
    condition = expanded_condition(rule)
    return any(text in condition for text in SUCCESS) or "not (ka.outcome = denied)" in condition


def _priority(name: str) -> Priority:
    return Priority.parse(str(RULES[name].item["priority"]))


ATTEMPTS = _attempt_table()


def test_the_table_lists_every_rule_that_fires_only_on_refusals() -> None:
    refusals = {name for name, rule in RULES.items() if _requires_refusal(rule)}
    tagged = {name for name, rule in RULES.items() if "attempt" in rule.item.get("tags", [])}
    assert tagged <= refusals, tagged - refusals
    assert sorted(ATTEMPTS) == sorted(refusals)


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
def test_an_attempt_ranks_below_the_same_thing_done(attempt: str) -> None:
    written, done = ATTEMPTS[attempt]
    priority = _priority(attempt)
    assert Priority.parse(written) == priority, f"{attempt}: the table says {written}"
    if done.startswith(NONE):
        reason = f"{attempt} ranks above NOTICE without a rule for the same thing done or a reason in the table"
        assert Priority.NOTICE.at_least(priority) or done.startswith(THE_FINDING), reason
        return
    for name in (part.strip() for part in done.split(",")):
        assert name in RULES, f"{attempt}: no rule named {name!r}"
        assert _rules_out_refusal(RULES[name]), f"{name} does not rule out refused requests"
        assert _priority(name).at_least(priority) and _priority(name) != priority, f"{attempt} vs {name}"
