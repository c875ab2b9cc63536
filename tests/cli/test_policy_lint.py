"""`kubetrail policy lint`: text and JSON output, exit codes 0/1/2, load failures."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
CLEAN = EXAMPLES / "cis-oriented.yaml"
WARNINGS_ONLY = EXAMPLES / "gke-style.yaml"
ERRORS = EXAMPLES / "bad-policy.yaml"
TEXT_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): (?P<severity>error|warning|info) (?P<code>[a-z-]+)( \[rule \d+\])?: "
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "lint", *args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize(("path", "expected"), [(CLEAN, 0), (WARNINGS_ONLY, 1), (ERRORS, 2)])
def test_exit_code_follows_the_worst_severity(path: Path, expected: int) -> None:
    code, _ = run(str(path))
    assert code == expected


def test_clean_policy_says_so() -> None:
    code, output = run(str(CLEAN))
    assert (code, output.strip()) == (0, "clean: no findings")


def test_text_lines_name_file_line_severity_code_rule_and_hint() -> None:
    _, output = run(str(ERRORS))
    lines = output.splitlines()
    findings = [line for line in lines if TEXT_LINE.match(line)]
    hints = [line for line in lines if line.startswith("  hint: ")]
    assert findings and len(hints) == len(findings)
    unknown = next(line for line in findings if " unknown-field " in line)
    assert unknown.startswith(f"{ERRORS}:")
    assert " error unknown-field [rule 2]: " in unknown
    source = ERRORS.read_text().splitlines()
    match = TEXT_LINE.match(unknown)
    assert match is not None
    assert source[int(match["line"]) - 1].strip() == 'verbs: ["watch"]'
    assert lines[-1] == "2 errors, 9 warnings"


def test_json_is_one_array_with_every_field() -> None:
    code, output = run(str(ERRORS), "-o", "json")
    records = json.loads(output)
    assert code == 2
    assert isinstance(records, list) and records
    for record in records:
        assert set(record) == {"file", "line", "severity", "code", "rule", "field", "message", "hint"}
    secret = next(record for record in records if record["code"] == "secret-body-recorded")
    assert (secret["severity"], secret["rule"], secret["field"]) == ("error", 3, "rules[3].level")


def test_json_for_a_clean_policy_is_an_empty_array() -> None:
    code, output = run(str(CLEAN), "-o", "json")
    assert (code, json.loads(output)) == (0, [])


def test_a_policy_that_does_not_load_exits_2_with_its_issues(tmp_path: Path) -> None:
    policy = tmp_path / "old.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n")
    code, output = run(str(policy))
    assert code == 2
    assert output.startswith(f"{policy}:1: error ")
    assert "1.24" in output
    code, output = run(str(policy), "-o", "json")
    (record,) = json.loads(output)
    assert (code, record["severity"], record["line"]) == (2, "error", 1)


@pytest.mark.parametrize(
    "content", [b"\x00\x01\x02garbage", b"rules: [", b"apiVersion: audit.k8s.io/v1\nkind: Policy\n"]
)
def test_bad_input_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_bytes(content)
    code, output = run(str(policy))
    assert code == 2
    assert "Traceback" not in output
    assert output.splitlines()[0].startswith(f"{policy}")


def test_validation_errors_keep_their_field_path(tmp_path: Path) -> None:
    policy = tmp_path / "invalid.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Bogus\n")
    code, output = run(str(policy))
    assert code == 2
    assert "rules[0].level: Unsupported value" in output


def test_help_has_examples() -> None:
    result = CliRunner().invoke(cli, ["policy", "lint", "--help"])
    assert result.exit_code == 0
    assert "kubetrail policy lint /etc/kubernetes/audit-policy.yaml" in result.output
    assert "-o json" in result.output


def test_installed_command_runs_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", "policy", "lint", str(WARNINGS_ONLY), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert [record["code"] for record in json.loads(done.stdout)] == ["noise-not-dropped"]
