"""`kubetrail report compliance` end to end: a generated log ingested into a store, then each output format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.report.helpers import Expected, expected_from, generate, ingest


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def kubetrail(*arguments: str, check: bool = True) -> Done:
    """The command run in-process (the store was built by real `generate` and `ingest` processes)."""
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    done = Done(result.exit_code, result.stdout, result.stderr)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    root = tmp_path_factory.mktemp("report-cli")
    log = generate(root / "audit.log", start="2026-03-18T00:00:00Z", seconds=2 * 86400, rate=0.01)
    return ingest(root / "store", log), expected_from(log)


def test_json_report_counts_what_the_log_holds(store: tuple[Path, Expected]) -> None:
    store_dir, expected = store
    done = kubetrail(
        "report", "compliance", "--framework", "pci-dss", "--store", str(store_dir),
        "--since", "2026-03-01", "--until", "2026-03-31", "-o", "json", check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # 2 days held of 365 required: 10.5.1 fails
    doc = json.loads(done.stdout)
    evidence = doc["evidence"]
    assert evidence["requests"] == len(expected.requests)
    assert evidence["rbac_changes"]["requests"] == len(expected.rbac_changes)
    assert evidence["exec_sessions"]["requests"] == len(expected.exec_sessions)
    assert evidence["secret_access"]["requests"] == sum(len(ids) for ids in expected.secret_reads.values())
    assert evidence["retention"]["clusters"][0]["days_covered"] == 2
    statuses = {item["id"]: item["status"] for item in doc["controls"]}
    assert statuses["10.5.1"] == "fail" and statuses["10.3.2"] == "pass"
    assert doc["themes"]["retention"]["reasons"] == [
        "cluster prod: the store holds 2 day(s) (2026-03-18 to 2026-03-19) of the 365 required"
    ]


def test_html_report_to_a_file(store: tuple[Path, Expected], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = kubetrail(
        "report", "compliance", "--framework", "cis", "--store", str(store[0]), "--since", "2026-03-18",
        "--until", "2026-03-20", "--retention-days", "2", "-o", "html", "--out", str(out), check=False,
    )  # fmt: skip
    assert done.stdout == ""
    assert f"wrote {out}:" in done.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "CIS 1.2.17" in page and page.count("<svg") == 2


def test_recent_period_of_an_old_store_is_not_evidenced(store: tuple[Path, Expected]) -> None:
    done = kubetrail(
        "report", "compliance", "--framework", "soc2", "--store", str(store[0]), "--since", "30d", "-o", "md",
        check=False,
    )  # fmt: skip
    assert "| CC6.2 | NOT EVIDENCED |" in done.stdout
    assert "no events were recorded in the period" in done.stdout


def test_apiserver_manifest_feeds_the_report(store: tuple[Path, Expected], tmp_path: Path) -> None:
    flags = tmp_path / "apiserver.flags"
    flags.write_text("kube-apiserver --audit-log-path=/var/log/audit.log --audit-log-maxage=3\n")
    done = kubetrail(
        "report", "compliance", "--framework", "cis", "--store", str(store[0]), "--since", "2026-03-18",
        "--until", "2026-03-20", "--apiserver", str(flags), "-o", "json", check=False,
    )  # fmt: skip
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    assert doc["evidence"]["apiserver"]["manifest"] == str(flags)
    controls = {item["id"]: item for item in doc["controls"]}
    assert controls["CIS 1.2.17"]["status"] == "fail"
    assert any("--audit-log-maxage=3" in reason for reason in controls["CIS 1.2.17"]["reasons"])


def test_a_bad_period_is_one_line_error(store: tuple[Path, Expected]) -> None:
    done = kubetrail(
        "report", "compliance", "--framework", "cis", "--store", str(store[0]), "--since", "last tuesday", check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: --since: 'last tuesday' is neither a duration nor a time")
    assert "Traceback" not in done.stderr


def test_each_cis_control_takes_only_its_own_apiserver_finding(store: tuple[Path, Expected], tmp_path: Path) -> None:
    flags = tmp_path / "apiserver.flags"
    flags.write_text(
        "kube-apiserver --audit-log-path=/var/log/audit.log --audit-log-maxage=30 --audit-log-maxbackup=3 "
        "--audit-log-maxsize=100\n"
    )
    done = kubetrail(
        "report", "compliance", "--framework", "cis", "--store", str(store[0]), "--since", "2026-03-18",
        "--until", "2026-03-20", "--retention-days", "2", "--apiserver", str(flags), "-o", "json", check=False,
    )  # fmt: skip
    controls = {item["id"]: item for item in json.loads(done.stdout)["controls"]}
    assert controls["CIS 1.2.18"]["status"] == "fail"
    assert controls["CIS 1.2.17"]["status"] == controls["CIS 1.2.19"]["status"] == "pass"
    assert not any("1.2.18" in reason for reason in controls["CIS 1.2.17"]["reasons"])


def test_each_section_query_reruns_with_kubetrail_query(store: tuple[Path, Expected]) -> None:
    window = ["--since", "2026-03-18", "--until", "2026-03-20"]
    doc = json.loads(
        kubetrail(
            "report", "compliance", "--framework", "soc2", "--store", str(store[0]), *window, "-o", "json",
            check=False,
        ).stdout
    )  # fmt: skip
    for section in ("secret_access", "rbac_changes", "exec_sessions"):
        query = doc["evidence"][section]["query"]
        listed = kubetrail(
            "query", "--store", str(store[0]), query, *window, "--fields", "id", "--limit", "0", "-o", "csv"
        )
        ids = set(listed.stdout.splitlines()[1:])
        assert len(ids) == doc["evidence"][section]["requests"] > 0, section


def test_a_directory_that_is_no_store_is_refused(tmp_path: Path) -> None:
    done = kubetrail("report", "compliance", "--framework", "cis", "--store", str(tmp_path), check=False)
    assert done.returncode == 2 and "is not a kubetrail store" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written into it
