"""`kubetrail generate` end to end: real processes, real files, compared with `policy explain`."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.intake import read_events
from kubetrail.model import Level, Stage
from kubetrail.policy.presets import preset_text

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]
SMALL = ["--duration", "20", "--rate", "10", "--seed", "4"]


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*KUBETRAIL, *args], capture_output=True, timeout=120, check=False)


def test_writes_fully_detailed_ndjson_deterministically(tmp_path: Path) -> None:
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    assert run("generate", *SMALL, "--scenario", "all", "-o", str(first)).returncode == 0
    assert run("generate", *SMALL, "--scenario", "all", "-o", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    events = list(read_events(first))
    assert len(events) == len(first.read_bytes().splitlines()) > 300
    assert {event.level for event in events} == {Level.REQUEST_RESPONSE}
    assert Stage.REQUEST_RECEIVED in {event.stage for event in events}


def test_gzip_output_holds_the_same_events_and_stdout_works(tmp_path: Path) -> None:
    plain, packed = tmp_path / "audit.log", tmp_path / "audit.log.gz"
    assert run("generate", *SMALL, "-o", str(plain)).returncode == 0
    assert run("generate", *SMALL, "-o", str(packed)).returncode == 0
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    streamed = run("generate", *SMALL)
    assert streamed.returncode == 0 and streamed.stdout == plain.read_bytes()


def test_policy_levels_are_the_ones_policy_explain_gives(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(preset_text())
    log = tmp_path / "audit.log"
    assert run("generate", *SMALL, "--scenario", "all", "--policy", str(policy), "-o", str(log)).returncode == 0
    events = list(read_events(log))
    assert events and all(event.stage != Stage.REQUEST_RECEIVED for event in events)
    explained = run("policy", "explain", str(policy), "--events", str(log), "-o", "json")
    assert explained.returncode == 0, explained.stderr
    decisions = [json.loads(text) for text in explained.stdout.splitlines() if text.strip()]
    assert [decision["auditID"] for decision in decisions] == [event.auditID for event in events]
    assert [decision["level"] for decision in decisions] == [event.level.value for event in events]
    assert all(event.stage not in decision["omitStages"] for event, decision in zip(events, decisions, strict=True))


def test_help_has_examples_and_bad_input_is_one_line() -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["generate", "--help"]).output
    assert "Examples:" in help_text and "--scenario" in help_text
    bad = run("generate", "--scenario", "ddos")
    assert bad.returncode != 0 and b"Traceback" not in bad.stderr
    bad_start = run("generate", "--start", "yesterday-ish")
    assert bad_start.returncode != 0 and b"Traceback" not in bad_start.stderr
