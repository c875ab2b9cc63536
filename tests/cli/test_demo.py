"""`kubetrail demo` end to end: a generated cluster through the sample (or a given) policy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from kubetrail.cli.demo import policy_report, render_report
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig
from kubetrail.model import PolicyRule
from kubetrail.model.policy import GroupResources
from kubetrail.policy.describe import describe_rule, human_bytes
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.store import Store

KUBETRAIL = [sys.executable, "-m", "kubetrail.cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KUBETRAIL, *args], capture_output=True, text=True, timeout=120, check=False)


def test_demo_prints_a_row_per_rule_and_totals() -> None:
    result = run("demo", "--duration", "60", "--rate", "20")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    rules = load_preset().policy.rules
    assert "What the policy records" in out
    for level in ("None", "Metadata", "Request", "RequestResponse"):
        assert level in out
    assert "total" in out and "per day" in out
    assert out.count("\n") > len(rules)


def test_demo_feeds_serve_and_every_written_event_lands_in_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = run("demo", "--duration", "60", "--rate", "20", "--store", str(store), "--exit")
    assert result.returncode == 0, result.stderr
    match = re.search(r"written: ([\d,]+) of", result.stdout)
    acked = re.search(r"serve acknowledged ([\d,]+) of ([\d,]+) events posted", result.stdout)
    assert match and acked, result.stdout
    written = int(match.group(1).replace(",", ""))
    assert int(acked.group(1).replace(",", "")) == int(acked.group(2).replace(",", "")) == written > 0
    with Store.open(store, read_only=True) as opened:
        rows = opened.query_connection().execute("select count(*), count(distinct cluster) from events").fetchone()
    assert rows == (written, 1)
    verified = run("verify", "--store", str(store))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the attack scenarios reach serve's detection: exec into a pod is among the alerts it stored
    assert "What detection raised" in result.stdout and "Exec" in result.stdout


def test_demo_without_attacks_raises_no_alert(tmp_path: Path) -> None:
    result = run("demo", "--duration", "60", "--rate", "20", "--no-attacks", "--store", str(tmp_path / "s"), "--exit")
    assert result.returncode == 0, result.stderr
    assert "detection: no alerts" in result.stdout


def test_demo_without_serve_prints_only_the_policy_table() -> None:
    result = run("demo", "--duration", "30", "--no-serve")
    assert result.returncode == 0, result.stderr
    assert "What the policy records" in result.stdout
    assert "acknowledged" not in result.stdout


def test_demo_with_a_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "everything.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    result = run("demo", "--policy", str(policy), "--duration", "30", "--no-attacks")
    assert result.returncode == 0, result.stderr
    assert "(everything)" in result.stdout


def test_demo_refuses_a_bad_policy_in_one_line(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n")
    result = run("demo", "--policy", str(policy), "--duration", "10")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "v1" in result.stderr


def test_policy_report_counts_every_request_and_the_table_renders() -> None:
    config = GeneratorConfig(seed=1, nodes=2, rate=10.0, duration=60.0, scenarios=SCENARIOS, scenario_repeats=1)
    policy = compile_policy(load_preset().policy)
    report = policy_report(config, policy)
    assert report.input_requests == sum(stats.requests for stats in report.rules) + report.unmatched.requests
    assert report.events == sum(stats.events for stats in report.rules)
    console = Console(record=True, width=160)
    render_report(report, policy, console, span_seconds=config.duration)
    text = console.export_text()
    assert f"{report.input_requests:,}" in text


def test_rule_summaries_and_sizes() -> None:
    rule = PolicyRule(
        level="None",
        users=["system:kube-proxy"],
        verbs=["watch"],
        resources=[GroupResources(group="", resources=["services"]), GroupResources(group="apps")],
    )
    assert describe_rule(rule) == "users=system:kube-proxy; verbs=watch; resources=services, apps/*"
    assert describe_rule(PolicyRule(level="Metadata")) == "(everything)"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"
