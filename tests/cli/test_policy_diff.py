"""`kubetrail policy diff` end to end: exit codes, bytes per day and coverage differences."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.cli.test_policy_simulate import _files
from tests.policy.test_diff import OTHER


def test_diff_reports_callers_bytes_and_coverage(tmp_path: Path) -> None:
    policy, log, rules = _files(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_bytes(OTHER.replace(b"level: None", b"level: RequestResponse"))
    args = ["policy", "diff", str(policy), str(other), str(log), "--rules", str(rules), "-o", "json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1
    record = json.loads(result.output.splitlines()[-1])
    assert {"user": "jane", "verb": "get", "resource": "/healthz", "events": 1} in record["onlyB"]
    # A writes the secret read at Metadata, B with its response body: the rule needing it fires only under B
    [change] = record["coverage"]
    assert (change["rule"], change["firedUnderA"], change["firedUnderB"]) == ("Secret read", 0, 1)
    assert record["a"]["bytesPerDay"] != record["b"]["bytesPerDay"]


def test_same_policy_twice_exits_zero(tmp_path: Path) -> None:
    policy, log, _ = _files(tmp_path)
    result = CliRunner().invoke(cli, ["policy", "diff", str(policy), str(policy), str(log), "--no-coverage"])
    assert result.exit_code == 0, result.output
    assert "both policies write the same events" in result.output
