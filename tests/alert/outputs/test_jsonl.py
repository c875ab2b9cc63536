from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kubetrail.alert.outputs import JsonlFileOutput, OutputError
from kubetrail.detect.priority import Priority
from tests.alert.helpers import make_alert

FALCO_KEYS = {"hostname", "output", "output_fields", "priority", "rule", "source", "tags", "time"}


def test_appends_falco_json_lines_to_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    output = JsonlFileOutput(path)
    output.send([make_alert(audit_id="1"), make_alert(audit_id="2", priority=Priority.CRITICAL)])
    output.close()
    again = JsonlFileOutput(path, fsync="never")
    again.send([make_alert(audit_id="3")])
    again.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["auditID"] for line in lines] == ["1", "2", "3"]
    assert set(lines[0]) >= FALCO_KEYS
    assert lines[1]["priority"] == "Critical"
    assert lines[0]["cluster"] == "prod"
    assert lines[0]["output_fields"]["ka.user.name"] == "alice"


def test_tightens_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("")
    path.chmod(0o644)
    JsonlFileOutput(path, fsync=5.0).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_text_format_writes_falco_text_lines(tmp_path: Path) -> None:
    path = tmp_path / "alerts.log"
    output = JsonlFileOutput(path, fmt="text")
    output.send([make_alert()])
    output.close()
    assert path.read_text() == "2018-10-25T14:09:12.581541123+0000: Notice " + make_alert().message + "\n"


def test_an_unwritable_place_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot open"):
        JsonlFileOutput(blocker / "alerts.jsonl")
