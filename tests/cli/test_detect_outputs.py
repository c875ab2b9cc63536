"""`kubetrail detect --outputs FILE`: the alerts printed are also delivered to the configured outputs."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli

RULES = """\
- rule: Delete a secret
  desc: A secret was deleted
  condition: ka.verb=delete and ka.target.resource=secrets
  output: Secret deleted (user=%ka.user.name secret=%ka.target.name)
  priority: ERROR
  source: k8s_audit
- rule: Read a configmap
  desc: A configmap was read
  condition: ka.verb=get and ka.target.resource=configmaps
  output: Configmap read (user=%ka.user.name)
  priority: INFO
  source: k8s_audit
"""


def event(number: int, verb: str, resource: str) -> str:
    stamp = f"2026-03-19T10:00:{number:02d}.000000Z"
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"id-{number}",
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/default/{resource}/obj-{number}",
            "verb": verb,
            "user": {"username": "carol"},
            "objectRef": {"resource": resource, "namespace": "default", "name": f"obj-{number}", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
        }
    )


def test_alerts_at_or_above_min_priority_reach_the_file_output(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "audit.log").write_text(
        "\n".join([event(1, "delete", "secrets"), event(2, "get", "configmaps"), event(3, "delete", "secrets")]) + "\n"
    )
    target = tmp_path / "alerts.jsonl"
    (tmp_path / "outputs.yaml").write_text(f"outputs:\n  - type: file\n    path: {target}\n    min_priority: warning\n")
    result = CliRunner().invoke(
        cli,
        ["detect", str(tmp_path / "audit.log"), "--rules", str(tmp_path / "rules.yaml"), "-o", "json",
         "--outputs", str(tmp_path / "outputs.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = [json.loads(line)["auditID"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert printed == ["id-1", "id-2", "id-3"]
    delivered = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(line["auditID"], line["priority"]) for line in delivered] == [("id-1", "Error"), ("id-3", "Error")]
    assert "output file: 2 sent, 1 below min_priority" in result.stderr


def test_a_bad_outputs_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "audit.log").write_text(event(1, "delete", "secrets") + "\n")
    (tmp_path / "outputs.yaml").write_text("outputs:\n  - type: fax\n")
    result = CliRunner().invoke(
        cli,
        ["detect", str(tmp_path / "audit.log"), "--rules", str(tmp_path / "rules.yaml"),
         "--outputs", str(tmp_path / "outputs.yaml")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "outputs.yaml:2: fax.type: unknown output type 'fax'" in result.output
    assert "Traceback" not in result.output
