"""`kubetrail secrets` and `ingest --redact` through the real command line."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVl"
EVENTS = [
    {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "11111111-1111-1111-1111-111111111111",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/app/secrets/db",
        "verb": "get",
        "user": {"username": "jane", "groups": ["system:authenticated"]},
        "objectRef": {"resource": "secrets", "namespace": "app", "name": "db", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "responseObject": {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "db"},
            "data": {"pw": SECRET_VALUE},
        },
        "requestReceivedTimestamp": "2026-03-19T10:00:00.000000Z",
        "stageTimestamp": "2026-03-19T10:00:00.001000Z",
    },
    {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "22222222-2222-2222-2222-222222222222",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/app/pods?limit=10",
        "verb": "list",
        "user": {"username": "jane", "groups": ["system:authenticated"]},
        "objectRef": {"resource": "pods", "namespace": "app", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-03-19T10:00:01.000000Z",
        "stageTimestamp": "2026-03-19T10:00:01.001000Z",
    },
]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _kubetrail(*args: str) -> Ran:
    """Run the kubetrail command in-process (as `kubetrail ARGS…`), its exit code and both output streams."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(event, separators=(",", ":")) + "\n" for event in EVENTS))
    return path


def test_scan_json_lines(log: Path) -> None:
    result = _kubetrail("secrets", "scan", str(log), "-o", "json")
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [
        {
            "file": str(log),
            "line": 1,
            "auditID": "11111111-1111-1111-1111-111111111111",
            "path": "responseObject.data.pw",
            "kind": "secret-data",
            "sha256": hashlib.sha256(SECRET_VALUE.encode()).hexdigest()[:12],
        }
    ]
    assert SECRET_VALUE not in result.stdout + result.stderr


def test_scan_text_and_clean_exit(log: Path, tmp_path: Path) -> None:
    result = _kubetrail("secrets", "scan", str(log))
    assert result.returncode == 1
    assert f"{log}:1" in result.stdout and "secret-data" in result.stdout
    assert "1 secret(s) found: secret-data 1" in result.stderr
    clean = tmp_path / "clean.log"
    clean.write_text(json.dumps(EVENTS[1]) + "\n")
    assert _kubetrail("secrets", "scan", str(clean)).returncode == 0


def test_redact_gzip_in_and_out(log: Path, tmp_path: Path) -> None:
    packed = tmp_path / "audit.log.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    out = tmp_path / "out" / "redacted.log.gz"
    out.parent.mkdir()
    result = _kubetrail("secrets", "redact", str(packed), "-o", str(out))
    assert result.returncode == 0, result.stderr
    original, redacted = log.read_bytes().splitlines(), gzip.decompress(out.read_bytes()).splitlines()
    assert len(original) == len(redacted)
    assert original[1] == redacted[1]
    assert SECRET_VALUE.encode() not in redacted[0]
    marker = b"REDACTED:sha256:" + hashlib.sha256(SECRET_VALUE.encode()).hexdigest()[:12].encode()
    assert redacted[0] == original[0].replace(SECRET_VALUE.encode(), marker)
    assert json.loads(redacted[0])["responseObject"]["data"]["pw"].startswith("REDACTED:sha256:")
    assert _kubetrail("secrets", "scan", str(out)).returncode == 0


def test_redact_refuses_to_overwrite_its_input(log: Path) -> None:
    result = _kubetrail("secrets", "redact", str(log), "-o", str(log))
    assert result.returncode == 2
    assert "would overwrite the input" in result.stderr


def test_ingest_redact_keeps_secrets_out_of_the_store(log: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = _kubetrail("ingest", "--store", str(store), "--redact", str(log))
    assert result.returncode == 0, result.stderr
    scanned = _kubetrail("secrets", "scan", "--store", str(store), "-o", "json")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr
    plain = tmp_path / "plain"
    assert _kubetrail("ingest", "--store", str(plain), str(log)).returncode == 0
    rows = [
        json.loads(line)
        for line in _kubetrail("secrets", "scan", "--store", str(plain), "-o", "json").stdout.splitlines()
    ]
    assert [(row["auditID"], row["path"], row["line"]) for row in rows] == [
        ("11111111-1111-1111-1111-111111111111", "responseObject.data.pw", None)
    ]
