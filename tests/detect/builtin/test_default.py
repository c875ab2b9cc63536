"""`kubetrail detect FILE` without --rules runs the built-in set, the same as `--rules builtin`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.detect.builtin.helpers import FIXTURES

KUBETRAIL = str(Path(sys.executable).parent / "kubetrail")


def _rules_fired(*args: str) -> list[str]:
    done = subprocess.run([KUBETRAIL, "detect", *args, "-q", "-o", "json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["rule"] for line in done.stdout.splitlines()]


def test_detect_defaults_to_the_builtin_set(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    events = [json.loads((FIXTURES / "binding-to-cluster-admin" / name).read_text()) for name in ("positive-1.json",)]
    log.write_text("".join(json.dumps(event) + "\n" for event in events))
    assert _rules_fired(str(log)) == ["Binding To Cluster-Admin"]
    assert _rules_fired(str(log), "--rules", "builtin") == ["Binding To Cluster-Admin"]


def test_fail_on_turns_a_builtin_alert_into_exit_code_1(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text((FIXTURES / "binding-to-cluster-admin" / "positive-1.json").read_text().replace("\n", "") + "\n")
    done = subprocess.run([KUBETRAIL, "detect", str(log), "-q", "--fail-on", "critical"], capture_output=True)
    assert done.returncode == 1
    quiet = subprocess.run(
        [KUBETRAIL, "detect", str(log), "-q", "--fail-on", "critical", "--min-priority", "emergency"]
    )
    assert quiet.returncode == 0
