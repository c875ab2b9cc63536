"""`kubetrail detect`: inputs in every layout, malformed events skipped with their place, exit codes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.detect.helpers import event_dict, rule

RULES = rule("ka.verb = create", name="created", output="made %ka.target.name", priority="WARNING") + rule(
    "ka.verb = delete", name="deleted", output="gone %ka.target.name", priority="INFO"
)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def _line(**changes: object) -> str:
    return json.dumps(event_dict(**changes))


def detect(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["detect", *args], input=input)
    return result.exit_code, result.stdout, result.stderr


def test_ndjson_in_json_out(tmp_path: Path, rules_file: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text("\n".join([_line(), _line(verb="get"), _line(verb="delete")]) + "\n")
    code, out, err = detect(str(log), "--rules", str(rules_file), "-o", "json", "--cluster", "prod")
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    assert [alert["rule"] for alert in alerts] == ["created", "deleted"]
    assert alerts[0]["cluster"] == "prod"
    assert alerts[0]["output_fields"] == {"evt.time.iso8601": 1714557600250000000, "ka.target.name": "web"}
    assert "3 events, 0 refused, 2 alerts" in err


def test_text_output_is_falcos_line(tmp_path: Path, rules_file: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_line() + "\n")
    code, out, _ = detect(str(log), "--rules", str(rules_file))
    assert code == 0
    assert out == "2024-05-01T10:00:00.250000000+0000: Warning made web\n"
    _, out, _ = detect(str(log), "--rules", str(rules_file), "--time-format", "time")
    assert out == "10:00:00.250000000+0000: Warning made web\n"


def test_malformed_events_are_reported_with_file_and_line_and_skipped(tmp_path: Path, rules_file: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [_line(auditID="a1"), '{"kind": 0}', "not json", _line(auditID="a2"), _line(auditID="a3")]
    log.write_text("\n".join(lines) + "\n")
    code, out, err = detect(str(log), "--rules", str(rules_file), "-o", "json")
    assert code == 0
    assert len(out.splitlines()) == 3
    assert f"refused {log}:2: " in err and "`$.kind`" in err and f"refused {log}:3: " in err
    assert "3 events, 2 refused, 3 alerts" in err
    assert "Traceback" not in err
    code, _, _ = detect(str(log), "--rules", str(rules_file), "-o", "json", "--strict")
    assert code == 1


def test_an_event_without_stage_timestamp_is_detected_at_its_receive_time(tmp_path: Path, rules_file: Path) -> None:
    """Every door keeps such an event (the store files it by requestReceivedTimestamp), so detect does too."""
    log = tmp_path / "audit.log"
    log.write_text(_line(stageTimestamp="") + "\n")
    code, out, _ = detect(str(log), "--rules", str(rules_file), "-o", "json")
    assert code == 0
    (alert,) = [json.loads(line) for line in out.splitlines()]
    assert alert["time"].startswith(event_dict()["requestReceivedTimestamp"][:19])


def test_a_request_repeated_raises_each_rule_once(tmp_path: Path, rules_file: Path) -> None:
    """The same request at two stages (or sent twice) is one request: one alert per rule."""
    log = tmp_path / "audit.log"
    log.write_text("\n".join([_line(stage="ResponseStarted"), _line(), _line()]) + "\n")
    code, out, err = detect(str(log), "--rules", str(rules_file), "-o", "json")
    assert code == 0, err
    assert [json.loads(line)["rule"] for line in out.splitlines()] == ["created"]


def test_only_refused_records_is_unusable_input(tmp_path: Path, rules_file: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text('{"kind": 0}\n{"auditID": 1}\n')
    code, out, err = detect(str(log), "--rules", str(rules_file))
    assert code == 2 and out == ""
    assert f"error: {log}: no audit events found: 2 records refused" in err and f"hint: the first: {log}:1:" in err


def test_a_missing_file_is_one_line_with_a_hint(tmp_path: Path, rules_file: Path) -> None:
    code, _, err = detect(str(tmp_path / "absent.log"), "--rules", str(rules_file))
    assert code == 2
    assert err.splitlines()[0] == f"error: {tmp_path / 'absent.log'}: no such file or directory"
    assert err.splitlines()[1].strip().startswith("hint:")


@pytest.mark.parametrize("layout", ["gzip", "eventlist", "array", "pretty"])
def test_other_layouts(tmp_path: Path, rules_file: Path, layout: str) -> None:
    events = [event_dict(), event_dict(verb="delete")]
    path = tmp_path / "audit.json"
    if layout == "gzip":
        path = tmp_path / "audit.log.gz"
        path.write_bytes(gzip.compress(("\n".join(json.dumps(event) for event in events) + "\n").encode()))
    elif layout == "eventlist":
        path.write_text(json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}))
    elif layout == "array":
        path.write_text(json.dumps(events, indent=2))
    else:
        path.write_text(json.dumps({"kind": "EventList", "items": events}, indent=2))
    code, out, err = detect(str(path), "--rules", str(rules_file), "-o", "json")
    assert code == 0, err
    assert [json.loads(line)["rule"] for line in out.splitlines()] == ["created", "deleted"]


def test_stdin(rules_file: Path) -> None:
    code, out, _ = detect("-", "--rules", str(rules_file), "-o", "json", input=_line() + "\n")
    assert code == 0
    assert json.loads(out)["rule"] == "created"


def test_fail_on_sets_the_exit_code_for_ci(tmp_path: Path, rules_file: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(_line(verb="delete") + "\n")
    assert detect(str(log), "--rules", str(rules_file), "--fail-on", "warning")[0] == 0
    assert detect(str(log), "--rules", str(rules_file), "--fail-on", "info")[0] == 1
    assert detect(str(log), "--rules", str(rules_file), "--fail-on", "debug")[0] == 1


def test_rule_matching_first(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule("ka.verb = create", name="A") + rule("ka.target.resource = pods", name="B"))
    log = tmp_path / "audit.log"
    log.write_text(_line() + "\n")
    _, out_all, _ = detect(str(log), "--rules", str(rules), "-o", "json")
    _, out_first, _ = detect(str(log), "--rules", str(rules), "-o", "json", "--rule-matching", "first")
    assert [json.loads(line)["rule"] for line in out_all.splitlines()] == ["A", "B"]
    assert [json.loads(line)["rule"] for line in out_first.splitlines()] == ["A"]


def test_a_rules_directory_loads_its_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "10-base.yaml").write_text("- list: verbs\n  items: [get]\n" + rule("ka.verb in (verbs)"))
    (folder / "20-local.yaml").write_text("- list: verbs\n  items: [create]\n  override:\n    items: append\n")
    (folder / "notes.txt").write_text("not rules")
    log = tmp_path / "audit.log"
    log.write_text(_line() + "\n")
    code, out, err = detect(str(log), "--rules", str(folder), "-o", "json")
    assert code == 0, err
    assert json.loads(out)["rule"] == "r"


def test_bad_rules_are_one_line_errors_with_their_place(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(rule("ka.verb = create and (ka.verb = get"))
    log = tmp_path / "audit.log"
    log.write_text(_line() + "\n")
    code, _, err = detect(str(log), "--rules", str(rules))
    assert code == 2
    assert err.startswith(f"error: {rules}:3:")
    assert "expected a ')' token" in err
    assert "Traceback" not in err


def test_without_rules_the_builtin_set_runs(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent / "builtin" / "fixtures" / "anonymous-request-allowed"
    log = fixtures / "positive-1.json"
    if not log.exists():
        pytest.skip("the built-in ruleset's fixtures are not present")
    default = detect(str(log), "-o", "json", "-q")
    named = detect(str(log), "--rules", "builtin", "-o", "json", "-q")
    assert default[0] == named[0] == 0
    assert default[1] and default[1] == named[1]  # no --rules means exactly `--rules builtin`
