"""`check apiserver` findings on good and bad manifests, per CIS control, and the command's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubetrail.check import Status, check_apiserver, parse_config
from kubetrail.check.apiserver import Finding
from kubetrail.cli.main import cli
from tests.check.manifests import GOOD_MANIFEST, GOOD_POLICY


def _node(tmp_path: Path, manifest: str = GOOD_MANIFEST, policy: str | None = GOOD_POLICY) -> Path:
    """A control-plane node's files under tmp_path/root and the manifest in tmp_path/manifests."""
    root = tmp_path / "root"
    (root / "etc" / "kubernetes").mkdir(parents=True)
    if policy is not None:
        (root / "etc" / "kubernetes" / "audit-policy.yaml").write_text(policy)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    path = manifests / "kube-apiserver.yaml"
    path.write_text(manifest)
    return path


def _check(tmp_path: Path, manifest: str = GOOD_MANIFEST, policy: str | None = GOOD_POLICY) -> dict[str, Finding]:
    path = _node(tmp_path, manifest, policy)
    findings = check_apiserver(parse_config(manifest, str(path)), root=tmp_path / "root", manifest_dir=path.parent)
    by_control: dict[str, Finding] = {}
    for finding in findings:
        if finding.control not in by_control or finding.status is Status.FAIL:
            by_control[finding.control] = finding
    return by_control


def test_the_documented_setup_passes_every_cis_control(tmp_path: Path) -> None:
    findings = _check(tmp_path)
    for control in ("CIS 1.2.16", "CIS 1.2.17", "CIS 1.2.18", "CIS 1.2.19", "CIS 3.2.1", "CIS 3.2.2"):
        assert findings[control].status is Status.PASS, findings[control]
    assert findings["KT-LOG-MOUNT"].status is Status.PASS
    assert not [f for f in findings.values() if f.status is Status.FAIL]


def _retention(maxage: str | None, maxbackup: str | None, maxsize: str | None) -> str:
    """GOOD_MANIFEST with the three retention flags set to these values (None: left out)."""
    manifest = GOOD_MANIFEST
    for flag, value in (("maxage", maxage), ("maxbackup", maxbackup), ("maxsize", maxsize)):
        good = next(line for line in manifest.splitlines(keepends=True) if f"--audit-log-{flag}=" in line)
        manifest = manifest.replace(good, "" if value is None else f"    - --audit-log-{flag}={value}\n")
    return manifest


def test_short_retention_fails_each_control_with_its_fix(tmp_path: Path) -> None:
    findings = _check(tmp_path, _retention("7", "5", "50"))
    assert findings["CIS 1.2.17"].status is Status.FAIL and "below 30" in findings["CIS 1.2.17"].detail
    assert "--audit-log-maxage=30" in findings["CIS 1.2.17"].fix
    assert findings["CIS 1.2.18"].status is Status.FAIL and "below 10" in findings["CIS 1.2.18"].detail
    assert findings["CIS 1.2.19"].status is Status.FAIL and "below 100" in findings["CIS 1.2.19"].detail
    assert "KT-LOG-RETENTION" not in findings


def test_flags_left_out_take_the_defaults_of_kube_apiserver_1_36(tmp_path: Path) -> None:
    # CHANGELOG-1.36: maxage defaults to 366 days, maxbackup to 100, maxsize stays 100 MB: each meets its control
    findings = _check(tmp_path, _retention(None, None, None))
    for control, default in (("CIS 1.2.17", "366 days"), ("CIS 1.2.18", "100 backups"), ("CIS 1.2.19", "100 MB")):
        assert findings[control].status is Status.PASS, findings[control]
        assert "not set" in findings[control].detail and default in findings[control].detail
    assert "KT-LOG-RETENTION" not in findings


def test_zero_lifts_a_limit_and_an_unbounded_log_warns(tmp_path: Path) -> None:
    # 0 disables age or count pruning: every rotated file is kept, more than any minimum, but the disk fills
    findings = _check(tmp_path, _retention("0", "0", "100"))
    assert findings["CIS 1.2.17"].status is Status.PASS and findings["CIS 1.2.18"].status is Status.PASS
    assert findings["KT-LOG-RETENTION"].status is Status.WARN
    assert "keep every rotated file" in findings["KT-LOG-RETENTION"].detail
    bounded = _check(tmp_path / "by-count", _retention("0", "10", "100"))
    assert bounded["CIS 1.2.17"].status is Status.PASS and "KT-LOG-RETENTION" not in bounded


def test_maxsize_zero_turns_rotation_off_and_warns(tmp_path: Path) -> None:
    # 1.36+: --audit-log-maxsize=0 disables rotation, so maxage and maxbackup never remove anything
    findings = _check(tmp_path, _retention("30", "10", "0"))
    assert findings["CIS 1.2.19"].status is Status.PASS and "never rotated" in findings["CIS 1.2.19"].detail
    assert findings["KT-LOG-RETENTION"].status is Status.WARN
    assert "rotation off" in findings["KT-LOG-RETENTION"].detail
    assert "--audit-log-maxsize=100" in findings["KT-LOG-RETENTION"].fix


def test_no_log_path_and_no_policy_fail(tmp_path: Path) -> None:
    manifest = GOOD_MANIFEST.replace("    - --audit-log-path=/var/log/kubernetes/audit/audit.log\n", "").replace(
        "    - --audit-policy-file=/etc/kubernetes/audit-policy.yaml\n", ""
    )
    findings = _check(tmp_path, manifest)
    assert findings["CIS 1.2.16"].status is Status.FAIL
    assert findings["CIS 1.2.17"].status is Status.FAIL and "no audit log file" in findings["CIS 1.2.17"].detail
    assert findings["CIS 3.2.1"].status is Status.FAIL and "no audit events" in findings["CIS 3.2.1"].detail


def test_a_policy_the_apiserver_refuses_fails_3_2_1(tmp_path: Path) -> None:
    findings = _check(tmp_path, policy=GOOD_POLICY.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"))
    assert findings["CIS 3.2.1"].status is Status.FAIL and "refused" in findings["CIS 3.2.1"].detail


def test_a_policy_that_records_secret_bodies_fails_3_2_2(tmp_path: Path) -> None:
    leaky = (
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: RequestResponse\n"
    )
    findings = _check(tmp_path, policy=leaky)
    assert findings["CIS 3.2.1"].status is Status.PASS
    assert findings["CIS 3.2.2"].status is Status.FAIL


def test_policy_and_log_must_be_reachable_through_hostpath_mounts(tmp_path: Path) -> None:
    manifest = GOOD_MANIFEST.replace("    - mountPath: /etc/kubernetes/audit-policy.yaml\n      name: audit\n", "")
    manifest = manifest.replace("      readOnly: true\n    - mountPath: /var/log", "    - mountPath: /var/log")
    manifest = manifest.replace("name: audit-log\n      readOnly: false", "name: audit-log\n      readOnly: true")
    findings = _check(tmp_path, manifest)
    assert findings["KT-POLICY-MOUNT"].status is Status.FAIL
    assert findings["KT-LOG-MOUNT"].status is Status.FAIL and "readOnly" in findings["KT-LOG-MOUNT"].detail


def test_an_unreadable_policy_is_a_warning_not_a_pass(tmp_path: Path) -> None:
    findings = _check(tmp_path, policy=None)
    assert findings["CIS 3.2.1"].status is Status.WARN


def test_log_options_the_apiserver_refuses_fail(tmp_path: Path) -> None:
    manifest = GOOD_MANIFEST.replace(
        "    - --audit-log-maxsize=100\n", "    - --audit-log-maxsize=100\n    - --audit-log-mode=fast\n"
    )
    findings = _check(tmp_path, manifest)
    assert (
        findings["KT-LOG-OPTIONS"].status is Status.FAIL
        and "invalid audit log mode fast" in findings["KT-LOG-OPTIONS"].detail
    )


def test_webhook_over_plain_http_without_truncation(tmp_path: Path) -> None:
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters:\n- name: audit\n  cluster:\n    server: http://audit.example:8080/audit\n"
        "users:\n- name: apiserver\ncontexts:\n- name: default\n  context:\n    cluster: audit\n    user: apiserver\n"
        "current-context: default\n"
    )
    manifest = GOOD_MANIFEST.replace(
        "    - --audit-log-maxsize=100\n",
        "    - --audit-log-maxsize=100\n    - --audit-webhook-config-file=/etc/kubernetes/webhook.yaml\n",
    )
    path = _node(tmp_path, manifest)
    (path.parent / "webhook.yaml").write_text(kubeconfig)
    findings = check_apiserver(parse_config(manifest, str(path)), root=tmp_path / "root", manifest_dir=path.parent)
    by_control = {f.control: f for f in findings}
    assert (
        by_control["KT-WEBHOOK-CONFIG"].status is Status.FAIL and "plain HTTP" in by_control["KT-WEBHOOK-CONFIG"].detail
    )
    assert by_control["KT-WEBHOOK-TRUNCATE"].status is Status.WARN
    assert by_control["KT-WEBHOOK-MOUNT"].status is Status.FAIL


def test_command_exit_codes_and_json(tmp_path: Path) -> None:
    good = _node(tmp_path)
    root = str(tmp_path / "root")
    result = CliRunner().invoke(cli, ["check", "apiserver", str(good), "--root", root, "-o", "json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["summary"]["fail"] == 0
    assert {f["control"] for f in record["findings"]} >= {"CIS 1.2.16", "CIS 1.2.19", "CIS 3.2.1"}
    bad = tmp_path / "bad.flags"
    bad.write_text("kube-apiserver --audit-log-path=/var/log/audit.log --audit-log-maxage=3\n")
    result = CliRunner().invoke(cli, ["check", "apiserver", str(bad), "--root", root])
    assert result.exit_code == 1
    assert "FAIL  CIS 1.2.17" in result.output and "fix: set --audit-log-maxage=30" in result.output
    result = CliRunner().invoke(cli, ["check", "apiserver", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_stdout_log_path_warns_and_batch_mode_is_noted(tmp_path: Path) -> None:
    manifest = GOOD_MANIFEST.replace("--audit-log-path=/var/log/kubernetes/audit/audit.log", "--audit-log-path=-")
    manifest = manifest.replace(
        "    - --audit-log-maxsize=100\n", "    - --audit-log-maxsize=100\n    - --audit-log-mode=batch\n"
    )
    findings = _check(tmp_path, manifest)
    assert findings["CIS 1.2.16"].status is Status.WARN and "stdout" in findings["CIS 1.2.16"].detail
    assert findings["CIS 1.2.17"].status is Status.PASS
    assert findings["KT-LOG-MODE"].status is Status.INFO
