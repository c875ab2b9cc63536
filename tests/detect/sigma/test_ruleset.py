"""Sigma rules beside Falco rules in one rule set: order under `first`, `all`, priorities and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.detect import Engine, Matching, Priority, RuleSource, load_ruleset
from kubetrail.detect.sigma import split_sources
from tests.detect.helpers import context, event_dict, rule
from tests.detect.sigma.helpers import rule_text

SIGMA_EXEC = rule_text(
    "    s:\n        verb: create\n        objectRef.subresource: exec\n    condition: s\n",
    title="Sigma exec",
    level="high",
    tags="    - attack.execution\n    - attack.t1609",
)
FALCO_EXEC = rule("ka.verb = create and ka.target.subresource = exec", name="Falco exec", output="exec")
EXEC_EVENT = {"verb": "create", "objectRef": {"resource": "pods", "subresource": "exec", "namespace": "default"}}


def _sources() -> list[RuleSource]:
    return [RuleSource("sigma.yml", SIGMA_EXEC), RuleSource("falco.yaml", FALCO_EXEC)]


def test_sources_are_split_by_content_not_name() -> None:
    falco, sigma = split_sources([RuleSource("a.yml", FALCO_EXEC), RuleSource("b.yaml", SIGMA_EXEC)])
    assert [source.name for source in falco] == ["a.yml"]
    assert [source.name for source in sigma] == ["b.yaml"]


def test_all_matching_gives_falco_then_sigma() -> None:
    engine = Engine(load_ruleset(_sources()), matching=Matching.ALL)
    assert [alert.rule for alert in engine.detect(context(**EXEC_EVENT))] == ["Falco exec", "Sigma exec"]


def test_first_matching_prefers_falco_rules() -> None:
    engine = Engine(load_ruleset(_sources()), matching=Matching.FIRST)
    assert [alert.rule for alert in engine.detect(context(**EXEC_EVENT))] == ["Falco exec"]
    sigma_only = Engine(load_ruleset([RuleSource("sigma.yml", SIGMA_EXEC)]), matching=Matching.FIRST)
    assert [alert.rule for alert in sigma_only.detect(context(**EXEC_EVENT))] == ["Sigma exec"]


def test_min_priority_applies_to_sigma_levels() -> None:
    ruleset = load_ruleset([RuleSource("sigma.yml", SIGMA_EXEC)])
    assert Engine(ruleset, min_priority=Priority.ERROR).detect(context(**EXEC_EVENT))  # high = ERROR
    assert not Engine(ruleset, min_priority=Priority.CRITICAL).detect(context(**EXEC_EVENT))


def test_alert_output_names_who_did_what(tmp_path: Path) -> None:
    (alert,) = Engine(load_ruleset([RuleSource("sigma.yml", SIGMA_EXEC)])).detect(context(**EXEC_EVENT))
    assert alert.message == (
        "Sigma exec (user=jane verb=create resource=pods subresource=exec ns=default name=<NA> "
        "uri=/api/v1/namespaces/default/pods)"
    )
    assert alert.priority is Priority.ERROR
    assert alert.mitre == ("T1609",)
    assert alert.output_fields["sigma.id"] == "11111111-2222-4333-8444-555555555555"


def test_rule_fields_are_output_fields() -> None:
    text = SIGMA_EXEC.replace("logsource:", "fields:\n    - user.groups\n    - sourceIPs\nlogsource:")
    (alert,) = Engine(load_ruleset([RuleSource("sigma.yml", text)])).detect(context(**EXEC_EVENT))
    assert alert.output_fields["user.groups"] == ["dev", "system:authenticated"]
    assert alert.output_fields["sourceIPs"] == "10.0.0.7"


def test_detect_command_takes_a_directory_of_sigma_and_falco_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "exec.yml").write_text(SIGMA_EXEC)
    (rules / "windows.yml").write_text(
        "title: Win\nlogsource:\n    product: windows\ndetection:\n    s:\n        Image: x\n    condition: s\n"
    )
    (rules / "falco.yaml").write_text(FALCO_EXEC)
    log = tmp_path / "audit.log"
    log.write_text("\n".join(json.dumps(event_dict(**changes)) for changes in ({}, EXEC_EVENT)) + "\n")
    result = CliRunner().invoke(cli, ["detect", str(log), "--rules", str(rules), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [("Falco exec", "Warning"), ("Sigma exec", "Error")]  # Falco rules first, then Sigma rules
    assert [(alert["rule"], alert["priority"]) for alert in alerts] == expected
    assert "windows.yml" in result.stderr and "skipped" in result.stderr


def test_verb_index_keeps_sigma_semantics() -> None:
    upper = rule_text("    s:\n        verb: CREATE\n    condition: s\n", title="upper")
    negated = rule_text("    s:\n        verb: get\n    condition: not s\n", title="negated")
    either = rule_text(
        "    a:\n        verb: get\n    b:\n        objectRef.subresource: exec\n    condition: a or b\n",
        title="either",
    )
    engine = Engine(
        load_ruleset([RuleSource(f"{index}.yml", text) for index, text in enumerate((upper, negated, either))])
    )
    assert [alert.rule for alert in engine.detect(context(**EXEC_EVENT))] == ["upper", "negated", "either"]
    assert [alert.rule for alert in engine.detect(context(verb="get"))] == ["either"]
