"""Thresholds, windows and baselines are tunable from a later rules file: `override: {threshold: replace}`.

Only the parameters written change; the rule keeps its condition, output, grouping and everything else.
Overriding a parameter the rule's kind does not have, or a kind the rule is not, is a load error at the line.
"""

from __future__ import annotations

import pytest

from kubetrail.detect import BUILTIN, Engine, Matching, RuleLoadError, RuleSource, load_ruleset, rule_sources
from tests.detect.stateful.events import at


def _secret_reads(engine: Engine, names: list[str], *, user: str = "mallory") -> list[str]:
    fired = []
    for second, name in enumerate(names):
        ctx = at(
            second,
            user=user,
            code=200,
            verb="get",
            requestURI=f"/api/v1/namespaces/payments/secrets/{name}",
            objectRef={"resource": "secrets", "namespace": "payments", "name": name, "apiVersion": "v1"},
        )
        fired.extend(alert.rule for alert in engine.detect(ctx))
    return fired


def _builtin(*extra: str) -> Engine:
    sources = [*rule_sources([BUILTIN]), *(RuleSource(f"tuning-{n}.yaml", text) for n, text in enumerate(extra))]
    return Engine(load_ruleset(sources), matching=Matching.ALL)


LOWER = """\
- rule: Burst Of Secret Reads
  threshold: {count: 3}
  override: {threshold: replace}
"""


def test_the_builtin_secret_burst_counts_distinct_secrets_and_a_lower_count_can_be_set() -> None:
    three = ["a", "b", "c"]
    assert "Burst Of Secret Reads" not in _secret_reads(_builtin(), three)
    assert _secret_reads(_builtin(LOWER), three).count("Burst Of Secret Reads") == 1
    # the same secret read again and again is not a harvest, whatever the count
    assert "Burst Of Secret Reads" not in _secret_reads(_builtin(LOWER), ["a"] * 10)


def test_an_override_keeps_the_rest_of_the_rule() -> None:
    engine = _builtin(LOWER)
    # grouping by user is kept: two people reading two secrets each do not add up
    fired = _secret_reads(engine, ["a", "b"], user="ann") + _secret_reads(engine, ["c", "d"], user="bob")
    assert "Burst Of Secret Reads" not in fired
    # and the condition too: kubelets stay exempt
    assert "Burst Of Secret Reads" not in _secret_reads(engine, ["a", "b", "c"], user="system:node:worker-1")


def test_the_window_can_be_widened() -> None:
    wider = "- rule: Burst Of Secret Reads\n  threshold: {count: 3, window: 1h}\n  override: {threshold: replace}\n"
    engine = _builtin(wider)
    fired = []
    for minute, name in enumerate(["a", "b", "c"]):
        ctx = at(
            minute * 600,
            user="mallory",
            code=200,
            verb="get",
            objectRef={"resource": "secrets", "namespace": "payments", "name": name, "apiVersion": "v1"},
        )
        fired.extend(alert.rule for alert in engine.detect(ctx))
    assert fired.count("Burst Of Secret Reads") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- rule: Burst Of Secret Reads\n  threshold: {steps: 2}\n  override: {threshold: replace}\n",
            "'steps' of 'threshold' cannot be overridden",
        ),
        (
            "- rule: Burst Of Secret Reads\n  threshold: {count: 0}\n  override: {threshold: replace}\n",
            "'count' must be a whole number of at least 1",
        ),
        (
            "- rule: Secret Read By Human\n  threshold: {count: 3}\n  override: {threshold: replace}\n",
            "Cannot override 'threshold': the rule has no stateful spec",
        ),
        (
            "- rule: New Source Address For User\n  threshold: {count: 3}\n  override: {threshold: replace}\n",
            "Cannot override 'threshold': the rule has first_seen",
        ),
        (
            "- rule: Burst Of Secret Reads\n  threshold: {count: 3}\n  override: {threshold: append}\n",
            "Key 'threshold' cannot be appended to",
        ),
    ],
)
def test_bad_overrides_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(RuleLoadError) as raised:
        _builtin(text)
    assert message in str(raised.value)
    assert "tuning-0.yaml:" in str(raised.value)


def test_first_seen_baselines_and_sequence_windows_are_tunable_too() -> None:
    text = (
        "- rule: New Source Address For User\n  first_seen: {baseline: 7d, learn: 1h}\n"
        "  override: {first_seen: replace}\n"
        "- rule: Exec Then RBAC Change\n  sequence: {within: 30m}\n  override: {sequence: replace}\n"
    )
    ruleset = load_ruleset([*rule_sources([BUILTIN]), RuleSource("tuning.yaml", text)])
    specs = {spec.name: spec for detector in ruleset.detectors() for spec in getattr(detector, "specs", ())}
    assert specs["New Source Address For User"].baseline_s == 7 * 86400
    assert specs["New Source Address For User"].learn_s == 3600
    assert specs["Exec Then RBAC Change"].within_s == 1800
