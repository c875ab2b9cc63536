"""`kubetrail policy simulate` end to end on a hand-written log: numbers, disk, coverage, errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.policy.test_simulate import EXPECTED_B, EXPECTED_C, EXPECTED_D, LOG, POLICY

RULES = """
- rule: Secret read
  desc: someone read a secret and got its data back
  condition: ka.verb=get and ka.target.resource=secrets and ka.resp.name exists
  output: secret read (user=%ka.user.name)
  priority: WARNING
  source: k8s_audit
"""
SECRET_RESPONSE = '"responseObject":{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}'


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(POLICY)
    log = tmp_path / "audit.log"
    lines = [line.replace(SECRET_RESPONSE, SECRET_RESPONSE[:-1] + ',"metadata":{"name":"db"}}') for line in LOG]
    log.write_text("\n".join(lines) + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return policy, log, rules


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "simulate", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_json_report_has_the_hand_counted_numbers(tmp_path: Path) -> None:
    policy, log, rules = _files(tmp_path)
    code, out = run(str(policy), str(log), "--rules", str(rules), "-o", "json")
    assert code == 0, out
    report = json.loads(out.splitlines()[-1])
    simulation = report["simulation"]
    assert simulation["inputEvents"] == 11 and simulation["inputRequests"] == 5 and simulation["events"] == 4
    pod_bytes = len(EXPECTED_C) + 1 + sum(len(text) + 1 for text in EXPECTED_D)
    assert simulation["rules"][2]["bytes"] == pod_bytes
    assert simulation["bytesPerDay"] == (len(EXPECTED_B) + 1 + pod_bytes) * 1440
    disk = report["disk"]
    # flags left out: kube-apiserver's defaults since 1.36 (maxsize 100, maxbackup 100, maxage 366)
    assert (disk["maxsize"], disk["maxbackup"], disk["maxage"]) == (100, 100, 366)
    [lost] = report["coverage"]
    assert lost["rule"] == "Secret read" and lost["firedFull"] == 1 and lost["firedUnderPolicy"] == 0
    [cause] = lost["causes"]
    assert cause["policyRule"] == 1 and cause["reason"] == "level Metadata drops responseObject"


def test_rotation_flags_change_the_disk_estimate(tmp_path: Path) -> None:
    policy, log, _ = _files(tmp_path)
    code, out = run(str(policy), str(log), "--no-coverage", "--audit-log-maxsize", "1", "--audit-log-maxbackup", "2")
    assert code == 0
    assert "given settings, kube-apiserver defaults for the rest" in out
    assert "--audit-log-maxsize=1 --audit-log-maxbackup=2 --audit-log-maxage=366" in out
    assert "limited by maxbackup" in out
    assert "coverage skipped" in out


def _disk(tmp_path: Path, *flags: str) -> dict[str, object]:
    policy, log, _ = _files(tmp_path)
    code, out = run(str(policy), str(log), "--no-coverage", "-o", "json", *flags)
    assert code == 0, out
    disk: dict[str, object] = json.loads(out.splitlines()[-1])["disk"]
    return disk


def test_maxsize_zero_means_no_rotation_not_100_mib(tmp_path: Path) -> None:
    disk = _disk(tmp_path, "--audit-log-maxsize", "0")
    assert (disk["maxsize"], disk["maxbackup"], disk["maxage"]) == (0, 100, 366)
    assert disk["daysOfHistory"] is None and disk["peakBytes"] is None and disk["rotationsPerDay"] == 0
    policy, log, _ = _files(tmp_path)
    code, out = run(str(policy), str(log), "--no-coverage", "--audit-log-maxsize", "0")
    assert code == 0 and "rotation is off (maxsize 0)" in out


def test_explicit_zero_pruning_keeps_everything_but_left_out_flags_prune(tmp_path: Path) -> None:
    kept = _disk(tmp_path, "--audit-log-maxbackup", "0", "--audit-log-maxage", "0")
    assert kept["daysOfHistory"] is None and kept["peakBytes"] is None
    pruned = _disk(tmp_path, "--audit-log-maxsize", "100")
    assert (pruned["maxbackup"], pruned["maxage"]) == (100, 366) and pruned["daysOfHistory"] is not None


def test_text_report_names_the_policy_rule_behind_a_loss(tmp_path: Path) -> None:
    policy, log, rules = _files(tmp_path)
    code, out = run(str(policy), str(log), "--rules", str(rules))
    assert code == 0
    assert "Secret read" in out and "rule 1 (Metadata: resources=secrets)" in out
    assert "Written per day, by level and stage" in out and "jane" in out


def test_missing_inputs_and_bad_policies_are_one_line_errors(tmp_path: Path) -> None:
    policy, _, _ = _files(tmp_path)
    result = CliRunner().invoke(cli, ["policy", "simulate", str(policy)])
    assert result.exit_code == 2 and "no events to replay" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    result = CliRunner().invoke(cli, ["policy", "simulate", str(bad), str(tmp_path / "audit.log")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_store_events_are_replayed_like_a_log(tmp_path: Path) -> None:
    from kubetrail.model import decode_event
    from kubetrail.store.store import Store

    policy, log, _ = _files(tmp_path)
    store_dir = tmp_path / "store"
    with Store.open(store_dir) as store:
        store.append("prod", [decode_event(line.encode()) for line in log.read_text().splitlines()])
    code, out = run(str(policy), "--store", str(store_dir), "--no-coverage", "-o", "json")
    assert code == 0, out
    from_store = json.loads(out.splitlines()[-1])["simulation"]
    code, out = run(str(policy), str(log), "--no-coverage", "-o", "json")
    from_log = json.loads(out.splitlines()[-1])["simulation"]
    for key in ("inputEvents", "inputRequests", "events", "bytes", "rules"):
        assert from_store[key] == from_log[key]
