"""Falco's own k8s_audit test suite: the real rules file, unchanged, against Falco's sample events.

Each file's expectations come from ../shared/corpus/falco/EXPECTED.json: what falcosecurity/testing
asserts (with the override snippets it loads after the rules), what the rules give under Falco's
default `rule_matching: first`, and the extra matches under `all`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubetrail.detect import Engine, Matching, Priority, RuleSource, load_ruleset
from kubetrail.detect.compiler import RuleSet
from kubetrail.intake import read_events

_COUNTED = re.compile(r"^(?P<rule>.+?)(?: \((?P<priority>[A-Z]+)\))?(?: x(?P<count>\d+))?$")


def _expected() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "falco" / "EXPECTED.json"
    if not path.is_file():
        return {"files": {}, "override_snippets": {}}
    return json.loads(path.read_text())  # type: ignore[no-any-return]


EXPECTED = _expected()
FILES = sorted(name for name, spec in EXPECTED["files"].items() if spec["events"] > 0)


def _counted(entries: list[str]) -> Counter[str]:
    """`["A x6", "B"]` as a multiset of rule names."""
    counts: Counter[str] = Counter()
    for entry in entries:
        found = _COUNTED.match(entry)
        assert found is not None
        counts[found["rule"]] += int(found["count"] or 1)
    return counts


_rulesets: dict[tuple[str, ...], RuleSet] = {}


def _ruleset(corpus: Path, overrides: tuple[str, ...] = ()) -> RuleSet:
    if overrides not in _rulesets:
        rules = corpus / "falco" / "k8s_audit_rules.yaml"
        sources = [RuleSource(str(rules), rules.read_text())]
        sources += [RuleSource(f"<{name}>", EXPECTED["override_snippets"][name]) for name in overrides]
        _rulesets[overrides] = load_ruleset(sources)
    return _rulesets[overrides]


def _alerts(corpus: Path, file: str, matching: Matching, overrides: tuple[str, ...] = ()) -> Counter[str]:
    engine = Engine(_ruleset(corpus, overrides), matching=matching)
    found: Counter[str] = Counter()
    for event in read_events(corpus / "falco" / "events" / file):
        for alert in engine.evaluate(event):
            found[alert.rule] += 1
    return found


def _priorities(corpus: Path, overrides: tuple[str, ...] = ()) -> dict[str, Priority]:
    return {rule.name: rule.priority for rule in _ruleset(corpus, overrides).rules}


def test_the_rules_file_loads_unchanged_with_every_rule(corpus: Path) -> None:
    ruleset = _ruleset(corpus)
    text = (corpus / "falco" / "k8s_audit_rules.yaml").read_text()
    assert len(ruleset.rules) == text.count("\n- rule: ")
    assert all(rule.source == "k8s_audit" for rule in ruleset.rules)


@pytest.mark.parametrize("file", FILES)
def test_default_rules_under_rule_matching_first(corpus: Path, file: str) -> None:
    spec = EXPECTED["files"][file]
    assert _alerts(corpus, file, Matching.FIRST) == _counted(spec["default_first"])


@pytest.mark.parametrize("file", FILES)
def test_default_rules_under_rule_matching_all(corpus: Path, file: str) -> None:
    spec = EXPECTED["files"][file]
    expected = _counted(spec["default_first"]) + _counted(spec["also_with_rule_matching_all"])
    assert _alerts(corpus, file, Matching.ALL) == expected


@pytest.mark.parametrize(
    "file", [name for name in FILES if EXPECTED["files"][name]["official"].get("rule") is not None]
)
def test_official_assertion(corpus: Path, file: str) -> None:
    official = EXPECTED["files"][file]["official"]
    overrides = tuple(official["overrides"])
    found = _alerts(corpus, file, Matching.FIRST, overrides)
    assert found[official["rule"]] == official["count"]
    assert _priorities(corpus, overrides)[official["rule"]] is Priority.parse(official["priority"])


@pytest.mark.parametrize(
    "file",
    [
        name
        for name in FILES
        if "rule" in EXPECTED["files"][name]["official"] and EXPECTED["files"][name]["official"]["rule"] is None
    ],
)
def test_official_no_alert(corpus: Path, file: str) -> None:
    overrides = tuple(EXPECTED["files"][file]["official"]["overrides"])
    assert _alerts(corpus, file, Matching.FIRST, overrides) == Counter()


def _variant_cases() -> list[tuple[str, tuple[str, ...], str]]:
    cases: list[tuple[str, tuple[str, ...], str]] = []
    for file in FILES:
        official = EXPECTED["files"][file]["official"]
        for combination, outcome in official.get("variants", {}).items():
            cases.append((file, tuple(part.strip() for part in combination.split("+")), outcome))
        negative = official.get("negative_variant")
        if negative:
            snippet = negative.removeprefix("no alert with ").strip()
            cases.append((file, (snippet,), "no alert"))
    return cases


@pytest.mark.parametrize(("file", "overrides", "outcome"), _variant_cases())
def test_official_variant_with_override_snippets(
    corpus: Path, file: str, overrides: tuple[str, ...], outcome: str
) -> None:
    found = _alerts(corpus, file, Matching.FIRST, overrides)
    if outcome == "no alert":
        assert found == Counter()
        return
    expected = _COUNTED.match(outcome)
    assert expected is not None
    assert found == Counter({expected["rule"]: int(expected["count"] or 1)})
    assert _priorities(corpus, overrides)[expected["rule"]] is Priority.parse(expected["priority"])


def test_the_command_over_every_sample_matches_falco_and_skips_the_malformed_one(corpus: Path) -> None:
    events = sorted((corpus / "falco" / "events").glob("*.json"))
    launcher = "from kubetrail.cli.detect import detect_command; detect_command(prog_name='kubetrail detect')"
    command = [sys.executable, "-c", launcher, *map(str, events)]
    command += ["--rules", str(corpus / "falco" / "k8s_audit_rules.yaml"), "--rule-matching", "first", "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    expected: Counter[str] = Counter()
    for spec in EXPECTED["files"].values():
        expected += _counted(spec["default_first"])
    assert Counter(alert["rule"] for alert in alerts) == expected
    assert "fal_01_003.json:1" in result.stderr
    assert "1 refused" in result.stderr
    for alert in alerts:
        assert alert.pop("outcome") in ("succeeded", "denied", "failed")
        assert set(alert) == {
            "auditID",
            "cluster",
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time",
        }
        assert alert["source"] == "k8s_audit"
        assert alert["tags"] == ["k8s"]
