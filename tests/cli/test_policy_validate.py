"""`kubetrail policy validate FILE`: exit 0 exactly when kube-apiserver would load the policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.policy.test_load import ACCEPTED, REFUSED

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KUBETRAIL, "policy", "validate", *args, str(path)], capture_output=True, text=True, timeout=60
    )


def validate_in_process(tmp_path: Path, text: str) -> int:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["policy", "validate", "-q", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_policies_exit_zero(tmp_path: Path, text: str) -> None:
    assert validate_in_process(tmp_path, text) == 0


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_refused_policies_exit_one(tmp_path: Path, text: str) -> None:
    assert validate_in_process(tmp_path, text) == 1


def test_valid_policy_prints_valid(tmp_path: Path) -> None:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(ACCEPTED["docs-style-policy"])
    result = run(path)
    assert result.returncode == 0
    assert result.stdout == "valid\n"
    assert result.stderr == ""


def test_unknown_field_warns_on_stderr_and_stays_valid(tmp_path: Path) -> None:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(ACCEPTED["unknown-field"])
    result = run(path)
    assert result.returncode == 0
    assert result.stdout == "valid\n"
    assert result.stderr.startswith(f"warning: {path}:5: rules[0].verb: ")
    assert "ignored" in result.stderr


def test_every_error_is_printed_with_location_and_hint(tmp_path: Path) -> None:
    path = tmp_path / "audit-policy.yaml"
    path.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n- verbs: [get]\n"
        "- level: Loud\n  nonResourceURLs: [healthz]\n"
    )
    result = run(path)
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if not line.startswith("  hint: ")]
    hints = [line for line in result.stdout.splitlines() if line.startswith("  hint: ")]
    assert errors == [
        f"{path}:5: rules[1].level: Required value",
        f'{path}:6: rules[2].level: Unsupported value: "Loud": supported values: "None", "Metadata", "Request", '
        '"RequestResponse"',
        f'{path}:7: rules[2].nonResourceURLs[0]: Invalid value: "healthz": non-resource URL rules must begin with '
        "a '/' character",
    ]
    assert len(hints) == 3
    assert "valid" not in result.stdout.split()


def test_retired_version_explains_the_conversion(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(REFUSED["v1beta1"])
    result = run(path)
    assert result.returncode == 1
    first, hint = result.stdout.splitlines()
    assert first.startswith(f"{path}:1: apiVersion: ") and "1.24" in first
    assert hint.startswith("  hint: ") and "audit.k8s.io/v1" in hint


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ACCEPTED["unknown-field"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(REFUSED["no-rules"])
    assert (run(good, "-q").returncode, run(good, "-q").stdout, run(good, "-q").stderr) == (0, "", "")
    assert (run(bad, "-q").returncode, run(bad, "-q").stdout) == (1, "")


def test_corpus_policy_is_valid(corpus: Path) -> None:
    result = run(corpus / "audit2rbac" / "demo-policy.yaml")
    assert (result.returncode, result.stdout) == (0, "valid\n")
