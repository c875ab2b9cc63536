"""Every command reads every format the same way: `detect`, `query --file`, `ingest` and `policy simulate`
count the same events on each source's shape, and report the same refused record."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.intake.shapes import Shape, shapes

SHAPES = {shape.name: shape for shape in shapes()}
RULES = """- rule: Anything
  desc: every event
  condition: ka.verb exists
  output: "%ka.verb"
  priority: INFO
  source: k8s_audit
"""
POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def counts(path: Path, work: Path) -> dict[str, int]:
    """The events each command says it read."""
    (work / "rules.yaml").write_text(RULES)
    (work / "policy.yaml").write_text(POLICY)
    found: dict[str, int] = {}
    code, _, err = _run("detect", str(path), "--rules", str(work / "rules.yaml"), "-o", "json")
    assert code == 0, err
    match = re.search(r"^(\d+) events, (\d+) refused", err, re.MULTILINE)
    assert match, err
    found["detect"] = int(match[1])
    code, out, err = _run("query", "--file", str(path), "--sql", "SELECT count(*) AS n FROM events", "-o", "json")
    assert code == 0, err
    found["query --file"] = json.loads(out)[0]["n"]
    code, out, err = _run("ingest", "--store", str(work / "store"), "--no-detect", "-o", "json", str(path))
    assert code == 0, err
    found["ingest"] = json.loads(out)["events"]
    code, out, err = _run("policy", "simulate", str(work / "policy.yaml"), str(path), "--no-coverage", "-o", "json")
    assert code == 0, err
    found["policy simulate"] = json.loads(out)["simulation"]["inputEvents"]
    return found


@pytest.mark.parametrize("name", SHAPES)
def test_every_command_counts_the_same_events(name: str, tmp_path: Path) -> None:
    shape: Shape = SHAPES[name]
    path = tmp_path / f"{name}{shape.suffix}"
    path.write_bytes(shape.data)
    found = counts(path, tmp_path)
    assert found == dict.fromkeys(found, shape.events)


def test_a_rotated_set_counts_the_same_everywhere(tmp_path: Path) -> None:
    """A directory of lumberjack backups (gzip'd) and the live file, read oldest first by every command."""
    lines = SHAPES["native-ndjson"].data.splitlines(keepends=True)
    third = len(lines) // 3
    logs = tmp_path / "audit"
    logs.mkdir()
    (logs / "audit-2026-03-19T09-00-00.000.log.gz").write_bytes(gzip.compress(b"".join(lines[:third])))
    (logs / "audit-2026-03-19T10-00-00.000.log").write_bytes(b"".join(lines[third : 2 * third]))
    (logs / "audit.log").write_bytes(b"".join(lines[2 * third :]))
    found = counts(logs, tmp_path)
    assert found == dict.fromkeys(found, len(lines))


def test_a_refused_record_is_reported_alike_and_never_shown_as_an_event(tmp_path: Path) -> None:
    shape = SHAPES["native-ndjson"]
    lines = shape.data.splitlines()
    bad = b'{"kind": "Event", "note": "not an audit event"}'
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join([*lines[:10], bad, *lines[10:]]) + b"\n")
    found = counts(path, tmp_path)
    assert found == dict.fromkeys(found, shape.events)
    warning = f"warning: refused {path}:11: "
    (tmp_path / "rules.yaml").write_text(RULES)
    for command in (
        ["detect", str(path), "--rules", str(tmp_path / "rules.yaml")],
        ["query", "--file", str(path), "verb=get", "-o", "ndjson", "--limit", "0"],
        ["ingest", "--store", str(tmp_path / "s2"), "--no-detect", str(path)],
        ["policy", "simulate", str(tmp_path / "policy.yaml"), str(path), "--no-coverage"],
        ["rbac", "generate", "--user", "nobody", str(path)],
    ):
        code, out, err = _run(*command)
        assert code == 0, (command, err)
        assert warning in err and "Object missing required field" in err, (command, err)
        assert "not an audit event" not in out, command
        code, _, _ = _run(*command, "--strict")
        assert code == 1, command


def test_unusable_input_is_one_error_with_a_hint(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes\n")
    broken = tmp_path / "audit.log.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    (tmp_path / "rules.yaml").write_text(RULES)
    for path, message in (
        (tmp_path / "absent.log", "no such file or directory"),
        (text, "cannot tell the format of this input"),
        (broken, "cannot read it: gzip data is "),
    ):
        for command in (
            ["detect", str(path), "--rules", str(tmp_path / "rules.yaml")],
            ["query", "--file", str(path), "verb=get"],
            ["ingest", "--store", str(tmp_path / "s"), str(path)],
            ["policy", "simulate", str(tmp_path / "policy.yaml"), str(path)],
        ):
            (tmp_path / "policy.yaml").write_text(POLICY)
            code, _, err = _run(*command)
            lines = err.strip().splitlines()
            assert code == 2, (command, err)
            assert lines[0].startswith(f"error: {path}: {message}"), (command, err)
            assert lines[1].strip().startswith("hint: "), (command, err)
