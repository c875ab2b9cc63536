"""`kubetrail detect --max-keys`: the stateful rules' key limit, and evictions counted in the summary."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.detect.helpers import event_dict

RULES = """\
- rule: repeated deletes
  desc: the same user deletes twice within ten minutes
  condition: ka.verb = delete
  output: "%ka.user.name deleted twice"
  priority: WARNING
  source: k8s_audit
  threshold: {count: 2, window: 10m, group_by: [ka.user.name]}
"""


def _log(tmp_path: Path) -> Path:
    """Alternating users a, b, a, b: each deletes twice, a minute apart (same window)."""
    lines = []
    for index, user in enumerate(["a", "b", "a", "b"]):
        stamp = f"2024-05-01T10:0{index}:00.000000Z"
        lines.append(
            json.dumps(
                event_dict(
                    auditID=f"0b1c2d3e-0000-4000-8000-00000000000{index}",
                    verb="delete",
                    user={"username": user},
                    requestReceivedTimestamp=stamp,
                    stageTimestamp=stamp,
                )
            )
        )
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def _detect(tmp_path: Path, *extra: str) -> tuple[int, list[str], str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    result = CliRunner().invoke(cli, ["detect", str(_log(tmp_path)), "--rules", str(rules), "-o", "json", *extra])
    users = [json.loads(line)["output_fields"]["ka.user.name"] for line in result.stdout.splitlines()]
    return result.exit_code, users, result.stderr


def test_without_a_tight_limit_both_users_reach_the_threshold(tmp_path: Path) -> None:
    code, users, err = _detect(tmp_path)
    assert code == 0, err
    assert users == ["a", "b"]
    assert "stateful rules: 1, 2 keys held, 0 keys evicted by the key limit" in err


def test_one_key_evicts_each_user_before_their_second_delete(tmp_path: Path) -> None:
    code, users, err = _detect(tmp_path, "--max-keys", "1")
    assert code == 0, err
    assert users == []
    assert "stateful rules: 1, 1 keys held, 3 keys evicted by the key limit" in err


def test_the_limit_must_be_positive(tmp_path: Path) -> None:
    code, _, err = _detect(tmp_path, "--max-keys", "0")
    assert code == 2
    assert "--max-keys" in err
