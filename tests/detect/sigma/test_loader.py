"""Loading Sigma files: which files are Sigma, which rules apply, and errors that name file, rule and problem."""

from __future__ import annotations

import pytest

from kubetrail.detect import Engine, load_ruleset
from kubetrail.detect.priority import Priority
from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.sigma import SigmaRuleError, is_sigma, level_priority, load_sigma, mitre_ids
from tests.detect.helpers import context
from tests.detect.sigma.helpers import rule_text, sigma

_WINDOWS = """title: Not Kubernetes
id: 9a9a9a9a-0000-4000-8000-000000000001
logsource:
    product: windows
    category: process_creation
detection:
    s:
        Image|endswith: '\\\\cmd.exe'
    condition: s
"""

_FALCO = """- rule: Exec
  desc: exec into a pod
  condition: ka.verb=create and ka.target.subresource=exec
  output: exec
  priority: WARNING
  source: k8s_audit
"""


def test_sigma_files_are_told_from_falco_files() -> None:
    assert is_sigma(rule_text("    s:\n        verb: create\n    condition: s\n"))
    assert is_sigma("title: c\ncorrelation:\n    type: event_count\n")
    assert not is_sigma(_FALCO)
    assert not is_sigma("detection: [unclosed")


def test_rules_for_other_logsources_are_skipped_with_a_notice_naming_the_file() -> None:
    rules = load_sigma([RuleSource("win.yml", _WINDOWS)])
    assert rules.rules == []
    (notice,) = rules.notices
    assert str(notice).startswith("win.yml: ")
    assert "Not Kubernetes" in str(notice) and "product: windows" in str(notice)


def test_several_documents_in_one_file_load_in_order() -> None:
    text = rule_text("    s:\n        verb: get\n    condition: s\n", title="first") + "---\n" + _WINDOWS
    text += "---\n" + rule_text("    s:\n        verb: list\n    condition: s\n", title="second").replace(
        "11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-555555555556"
    )
    rules = load_sigma([RuleSource("multi.yml", text)])
    assert [rule.title for rule in rules.rules] == ["first", "second"]


def test_a_condition_naming_an_unknown_selection_names_file_and_rule() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        sigma(rule_text("    s:\n        verb: get\n    condition: s and missing\n", title="Broken"))
    text = str(caught.value)
    assert text.startswith("rule-0.yml")
    assert "Broken (11111111-2222-4333-8444-555555555555)" in text
    assert "missing" in text


def test_an_unknown_modifier_is_an_error() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        sigma(rule_text("    s:\n        verb|sometimes: get\n    condition: s\n", title="Odd"))
    assert "sometimes" in str(caught.value)
    assert "Odd (11111111-2222-4333-8444-555555555555)" in str(caught.value)


def test_the_retired_pipe_aggregation_is_an_error_that_says_so() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        sigma(rule_text("    s:\n        verb: get\n    condition: s | count() > 5\n"))
    assert "correlation" in str(caught.value).lower()


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        load_sigma([RuleSource("bad.yml", "title: x\ndetection:\n  s: [a\n")])
    assert caught.value.source == "bad.yml"
    assert caught.value.line is not None


def test_an_invalid_cidr_is_an_error() -> None:
    with pytest.raises(SigmaRuleError) as caught:
        sigma(rule_text("    s:\n        sourceIPs|cidr: 10.0.0.300/8\n    condition: s\n"))
    assert "cidr" in str(caught.value).lower()


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        ("informational", Priority.INFORMATIONAL),
        ("low", Priority.NOTICE),
        ("medium", Priority.WARNING),
        ("high", Priority.ERROR),
        ("critical", Priority.CRITICAL),
        (None, Priority.WARNING),
    ],
)
def test_levels_map_to_priorities(level: str | None, priority: Priority) -> None:
    assert level_priority(level) is priority


def test_level_of_a_loaded_rule() -> None:
    (rule,) = sigma(rule_text("    s:\n        verb: get\n    condition: s\n", level="critical")).rules
    assert rule.priority is Priority.CRITICAL


def test_mitre_ids_come_from_technique_tags_only() -> None:
    tags = ["attack.execution", "attack.t1609", "attack.T1552.007", "cve.2021-25741", "attack.g0007", "attack.t1609"]
    assert mitre_ids(tags) == ("T1609", "T1552.007")


def test_global_actions_share_a_detection_across_documents() -> None:
    text = (
        "action: global\ntitle: G\nlogsource:\n    product: kubernetes\n    service: audit\n"
        "detection:\n    condition: s\n---\nid: 11111111-2222-4333-8444-555555555551\n"
        "detection:\n    s:\n        verb: create\n---\nid: 11111111-2222-4333-8444-555555555552\n"
        "detection:\n    s:\n        verb: get\n"
    )
    assert [rule.verbs for rule in sigma(text).rules] == [frozenset({"create"}), frozenset({"get"})]


def test_placeholders_and_timestamp_parts_are_refused() -> None:
    with pytest.raises(SigmaRuleError, match="placeholder"):
        sigma(rule_text("    s:\n        verb|expand: '%verbs%'\n    condition: s\n"))
    with pytest.raises(SigmaRuleError, match="timestamp-part"):
        sigma(rule_text("    s:\n        stageTimestamp|minute: 5\n    condition: s\n"))


def test_a_sigma_filter_file_narrows_the_rules_it_names() -> None:
    created = rule_text("    s:\n        verb: create\n    condition: s\n", title="created")
    created = created.replace("status: test\n", "status: test\nname: created_rule\n")
    not_admins = (
        "title: Not for admins\nid: 22222222-2222-4333-8444-555555555555\n"
        "logsource:\n    product: kubernetes\n    service: audit\n"
        "filter:\n    rules:\n        - created_rule\n    selection:\n        user.username: admin\n"
        "    condition: not selection\n"
    )
    assert is_sigma(not_admins)
    engine = Engine(load_ruleset([RuleSource("created.yml", created), RuleSource("filter.yml", not_admins)]))
    assert [alert.rule for alert in engine.detect(context())] == ["created"]
    assert engine.detect(context(user={"username": "admin"})) == []
