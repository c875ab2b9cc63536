"""`detect_events`: a rule set over events from Python, with the alerts `kubetrail detect` raises."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.detect import Priority, load_ruleset, rule_sources
from kubetrail.detect.run import detect_events
from kubetrail.model import Stage, decode_event
from tests.detect.test_per_request import SESSION

STARTED = decode_event(json.dumps(SESSION).encode())
COMPLETE = msgspec.structs.replace(STARTED, stage=Stage.RESPONSE_COMPLETE, stageTimestamp="2026-03-19T10:00:09Z")


def test_each_rule_alerts_once_per_request_as_the_command_does(tmp_path: Path) -> None:
    alerts = list(detect_events([STARTED, COMPLETE], hostname="h"))
    assert alerts and {alert.audit_id for alert in alerts} == {STARTED.auditID}
    names = [alert.rule for alert in alerts]
    assert len(names) == len(set(names)) and "Exec Or Attach Into Pod" in names
    log = tmp_path / "audit.log"
    log.write_text(json.dumps(SESSION) + "\n" + msgspec.json.encode(COMPLETE).decode() + "\n")
    result = CliRunner().invoke(cli, ["detect", str(log), "-o", "json"])
    assert sorted(json.loads(line)["rule"] for line in result.stdout.splitlines()) == sorted(names)


def test_rules_may_be_a_compiled_set_and_priorities_filter() -> None:
    ruleset = load_ruleset(rule_sources(["builtin"]))
    every = list(detect_events([STARTED], ruleset, hostname="h", cluster="prod"))
    assert {alert.cluster for alert in every} == {"prod"}
    high = list(detect_events([STARTED], ruleset, hostname="h", min_priority=Priority.CRITICAL))
    assert all(alert.priority.at_least(Priority.CRITICAL) for alert in high) and len(high) < len(every)
