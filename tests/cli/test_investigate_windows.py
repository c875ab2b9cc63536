"""`kubetrail investigate …` over data that is not recent: the data's own range with a note, or a hint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.query.events import event, write_ndjson

OLD = [
    event("r1", time="2026-03-01T10:00:00.000000Z", verb="get", resource="secrets", namespace="prod", name="db"),
    event("r2", time="2026-03-02T11:00:00.000000Z", verb="list", resource="secrets", namespace="dev"),
]


def _invoke(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_without_since_old_data_is_shown_whole_with_a_note(tmp_path: Path) -> None:
    log = write_ndjson(tmp_path / "old.log", OLD)
    code, out, err = _invoke("investigate", "secrets", "--file", str(log), "-o", "json")
    assert code == 0
    assert {row["audit_id"] for row in json.loads(out)["events"]} == {"r1", "r2"}
    assert "note: nothing in the last 24h; showing the data's own range 2026-03-01T10:00Z to 2026-03-02T11:00Z" in err


def test_an_empty_explicit_window_names_the_data_range(tmp_path: Path) -> None:
    log = write_ndjson(tmp_path / "old.log", OLD)
    code, out, err = _invoke("investigate", "secrets", "--file", str(log), "--since", "1h", "-o", "json")
    assert code == 0 and json.loads(out)["events"] == []
    assert "the data spans 2026-03-01T10:00Z to 2026-03-02T11:00Z (e.g. --since 2026-03-01T10:00Z)" in err


def test_a_window_with_events_but_no_answer_gets_no_hint(tmp_path: Path) -> None:
    log = write_ndjson(tmp_path / "old.log", OLD)
    code, _, err = _invoke("investigate", "forbidden", "--file", str(log), "--since", "2026-03-01T00:00Z")
    assert code == 0 and "hint:" not in err and "note:" not in err


def test_recent_data_gets_no_note(tmp_path: Path) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    log = write_ndjson(tmp_path / "new.log", [event("n1", time=recent, verb="get", resource="secrets", name="db")])
    code, _, err = _invoke("investigate", "secrets", "--file", str(log))
    assert code == 0 and "note:" not in err


def test_new_identities_counts_back_from_the_newest_event_and_says_so(tmp_path: Path) -> None:
    log = write_ndjson(tmp_path / "old.log", OLD)
    code, _, err = _invoke("investigate", "new-identities", "--file", str(log))
    assert code == 0
    assert "showing the data's last 24h 2026-03-01T11:00Z to 2026-03-02T11:00Z" in err
