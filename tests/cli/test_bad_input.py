"""Bad input through the real `kubetrail` entry point: one clear line (and maybe a hint), exit 1 or 2, no traceback."""

from __future__ import annotations

import functools
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]
HEADER = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
GOOD_POLICY = HEADER + "rules:\n- level: Metadata\n"

BAD_POLICIES: dict[str, bytes] = {
    "not-yaml": b"rules: [level: Metadata\n  - {{ oops\n",
    "plain-text": b"This is my audit policy. Log everything.\n",
    "wrong-kind": b"apiVersion: audit.k8s.io/v1\nkind: EventList\nrules:\n- level: Metadata\n",
    "config-map": b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: audit}\ndata: {policy: x}\n",
    "wrong-api-version": b"apiVersion: audit.k8s.io/v2\nkind: Policy\nrules:\n- level: Metadata\n",
    "retired-api-version": b"apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n",
    "unknown-level": (HEADER + "rules:\n- level: Everything\n").encode(),
    "wrong-type": (HEADER + "rules:\n- level: Metadata\n  verbs: get\n").encode(),
    "binary-garbage": bytes(range(256)) * 4,
    "high-bytes": b"\xff\xfe\xfd" * 50,
    "gzip": gzip.compress(GOOD_POLICY.encode()),
    "empty": b"",
    "json-truncated": b'{"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [',
}

POLICY_COMMANDS = {
    "validate": [],
    "lint": [],
    "explain": ["--user", "jane", "--verb", "get", "--resource", "pods", "--namespace", "default"],
}


def kubetrail(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBETRAIL, *args], capture_output=True, text=True, timeout=60)


@functools.cache
def has_command(name: str) -> bool:
    return kubetrail("policy", name, "--help").returncode == 0


def assert_one_clear_error(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1 or 2, no traceback, exactly one error line plus at most one `hint:` line; return the error line."""
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    hints = [line for line in lines if line.strip().startswith("hint:")]
    errors = [line for line in lines if not line.strip().startswith("hint:")]
    assert len(errors) == 1, lines
    assert len(hints) <= 1, lines
    assert len(errors[0]) < 400
    return errors[0]


def require(command: str) -> list[str]:
    if not has_command(command):
        pytest.skip(f"`kubetrail policy {command}` is not available")
    return ["policy", command]


# Every bad file through `validate`; the acceptance list through the commands that also read policies.
ACCEPTANCE = ["not-yaml", "wrong-kind", "wrong-api-version", "unknown-level", "binary-garbage", "empty"]
BAD_POLICY_CASES = [("validate", name) for name in BAD_POLICIES] + [
    (command, name) for command in POLICY_COMMANDS if command != "validate" for name in ACCEPTANCE
]


@pytest.mark.parametrize(("command", "name"), BAD_POLICY_CASES)
def test_bad_policy_file(tmp_path: Path, command: str, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(BAD_POLICIES[name])
    line = assert_one_clear_error(kubetrail(*require(command), str(path), *POLICY_COMMANDS[command]))
    assert str(path) in line


@pytest.mark.parametrize("command", POLICY_COMMANDS)
def test_missing_policy_file(tmp_path: Path, command: str) -> None:
    path = tmp_path / "nowhere.yaml"
    line = assert_one_clear_error(kubetrail(*require(command), str(path), *POLICY_COMMANDS[command]))
    assert "nowhere.yaml" in line


@pytest.mark.parametrize("command", POLICY_COMMANDS)
def test_directory_as_policy_file(tmp_path: Path, command: str) -> None:
    line = assert_one_clear_error(kubetrail(*require(command), str(tmp_path), *POLICY_COMMANDS[command]))
    assert "directory" in line.lower()


def test_messages_say_what_is_wrong(tmp_path: Path) -> None:
    expectations = {
        "wrong-kind": '"EventList"',
        "wrong-api-version": "audit.k8s.io/v2",
        "retired-api-version": "1.24",
        "unknown-level": '"Everything"',
        "wrong-type": "rules[0].verbs",
        "binary-garbage": "binary",
        "not-yaml": "YAML",
        "json-truncated": "JSON",
        "empty": "empty",
    }
    for name, needle in expectations.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(BAD_POLICIES[name])
        assert needle in assert_one_clear_error(kubetrail("policy", "validate", str(path))), name


BAD_EVENTS: dict[str, bytes] = {
    "binary-garbage": bytes(range(256)) * 4,
    "not-json": b"GET /api/v1/pods 200\n",
    "wrong-kind": b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}}\n',
    "kind-not-a-string": b'{"kind": 0}\n',
    "unknown-api-version": b'{"kind": "Event", "apiVersion": "audit.k8s.io/v7", "level": "Metadata", '
    b'"auditID": "a", "stage": "ResponseComplete", "requestURI": "/healthz", "verb": "get", "user": {}}\n',
    "truncated-gzip": gzip.compress(b'{"kind": "Event"}\n' * 100)[:14],
}


@pytest.mark.parametrize("name", BAD_EVENTS)
def test_bad_events_file_for_explain(tmp_path: Path, name: str) -> None:
    args = require("explain")
    policy = tmp_path / "policy.yaml"
    policy.write_text(GOOD_POLICY)
    events = tmp_path / f"{name}.log"
    events.write_bytes(BAD_EVENTS[name])
    line = assert_one_clear_error(kubetrail(*args, str(policy), "--events", str(events), "-o", "json"))
    assert f"{name}.log" in line


def test_unknown_subcommand_is_not_a_traceback() -> None:
    result = kubetrail("policy", "no-such-command")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
