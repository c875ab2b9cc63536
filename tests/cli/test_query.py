"""`kubetrail query` and `kubetrail investigate` against Debian's real `jq` on the same generated log.

The seeds answer four incident questions with jq one-liners; kubetrail must return exactly the same events
(compared as sets of (auditID, stage)), both reading the file in place and after `kubetrail ingest`.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")

# Every stage of every request has 6 fractional digits, so this bound compares the same as strings and as times.
SINCE = "2026-03-19T10:03:00.000000Z"
JQ = {
    "secrets": (
        f'select(.requestReceivedTimestamp >= "{SINCE}" and .objectRef.resource=="secrets" and '
        '(.verb=="get" or .verb=="list" or .verb=="watch"))'
    ),
    "forbidden": "select(.responseStatus.code==403)",
    "exec": 'select(.objectRef.resource=="pods" and .objectRef.subresource=="exec")',
    "rbac": (
        'select(.objectRef.apiGroup=="rbac.authorization.k8s.io" and '
        '(.verb=="create" or .verb=="update" or .verb=="patch" or .verb=="delete"))'
    ),
}
QUERY = {
    "secrets": ["resource=secrets verb in (get,list,watch)", "--since", SINCE],
    "forbidden": ["code=403"],
    "exec": ["resource=pods subresource=exec"],
    "rbac": ["apigroup=rbac.authorization.k8s.io verb in (create,update,patch,delete)"],
}
INVESTIGATE = {
    "secrets": ["secrets", "--since", SINCE],
    "forbidden": ["forbidden"],
    "exec": ["exec", "--subresource", "exec"],
    "rbac": ["rbac"],
}

Key = tuple[str, str]


def _keys(ndjson_text: str) -> set[Key]:
    keys: set[Key] = set()
    for line in ndjson_text.splitlines():
        if line.strip():
            document = json.loads(line)
            keys.add((document["auditID"], document["stage"]))
    return keys


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "audit.log"
    result = CliRunner().invoke(
        cli, ["generate", "--scenario", "all", "--duration", "400", "--rate", "15", "--seed", "11", "-o", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def store(log: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store") / "store"
    result = CliRunner().invoke(cli, ["ingest", "--store", str(directory), str(log)])
    assert result.exit_code == 0, result.output
    return directory


@pytest.fixture(scope="module")
def expected(log: Path) -> dict[str, set[Key]]:
    answers: dict[str, set[Key]] = {}
    for name, program in JQ.items():
        output = subprocess.run(["jq", "-c", program, str(log)], check=True, capture_output=True, text=True).stdout
        answers[name] = _keys(output)
        assert answers[name], f"the generated log has no {name} events; the comparison would prove nothing"
    return answers


def _run(arguments: list[str]) -> str:
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("name", list(JQ))
def test_query_on_the_file_matches_jq(name: str, log: Path, expected: dict[str, set[Key]]) -> None:
    output = _run(["query", *QUERY[name], "--file", str(log), "-o", "ndjson", "--limit", "0"])
    assert _keys(output) == expected[name]


@pytest.mark.parametrize("name", list(JQ))
def test_query_on_the_store_matches_jq(name: str, store: Path, expected: dict[str, set[Key]]) -> None:
    output = _run(["query", *QUERY[name], "--store", str(store), "-o", "ndjson", "--limit", "0"])
    assert _keys(output) == expected[name]


@pytest.mark.parametrize("name", list(JQ))
def test_investigate_matches_jq(name: str, log: Path, store: Path, expected: dict[str, set[Key]]) -> None:
    on_file = _run(["investigate", *INVESTIGATE[name], "--file", str(log), "-o", "ndjson"])
    on_store = _run(["investigate", *INVESTIGATE[name], "--store", str(store), "-o", "ndjson"])
    assert _keys(on_file) == expected[name]
    assert _keys(on_store) == expected[name]


def test_gzip_and_rotated_set_read_in_place(log: Path, tmp_path: Path, expected: dict[str, set[Key]]) -> None:
    lines = log.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    directory = tmp_path / "logs"
    directory.mkdir()
    (directory / "audit-2026-03-19T10-03-00.000.log.gz").write_bytes(gzip.compress(b"".join(lines[:half])))
    (directory / "audit.log").write_bytes(b"".join(lines[half:]))
    output = _run(["query", "code=403", "--file", str(directory), "-o", "ndjson", "--limit", "0"])
    assert _keys(output) == expected["forbidden"]


def test_event_list_document_goes_through_the_readers(tmp_path: Path, log: Path, expected: dict[str, set[Key]]) -> None:
    items = [json.loads(line) for line in log.read_text().splitlines()[:3000]]
    document = tmp_path / "events.json"
    document.write_text(json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}))
    output = _run(["query", "code=403", "--file", str(document), "-o", "ndjson", "--limit", "0"])
    present = {(item["auditID"], item["stage"]) for item in items}
    assert _keys(output) == expected["forbidden"] & present
    assert _keys(output)


def test_outputs_and_fields(log: Path) -> None:
    rows = json.loads(_run(["query", "code=403", "--file", str(log), "-o", "json", "--fields", "user,verb,code,id"]))
    assert rows and set(rows[0]) == {"user", "verb", "response_code", "audit_id"}
    assert all(row["response_code"] == 403 for row in rows)
    csv_text = _run(["query", "code=403", "--file", str(log), "-o", "csv", "--fields", "user,code", "--limit", "3"])
    assert csv_text.splitlines()[0] == "user,response_code" and len(csv_text.splitlines()) == 4
    yaml_text = _run(["query", "code=403", "--file", str(log), "-o", "yaml", "--limit", "1", "--fields", "code"])
    assert yaml_text.strip() == "- response_code: 403"
    table = _run(["query", "code=403", "--file", str(log), "--limit", "2"])
    assert "response_code" in table and "403" in table


def test_sql_over_matched_events(log: Path, expected: dict[str, set[Key]]) -> None:
    output = _run(["query", "code=403", "--file", str(log), "-o", "json", "--sql", "SELECT count(*) AS n FROM matched"])
    assert json.loads(output) == [{"n": len(expected["forbidden"])}]


def test_bad_filter_points_at_the_token(log: Path) -> None:
    result = CliRunner().invoke(cli, ["query", "code=403 usr=jane", "--file", str(log)])
    assert result.exit_code == 2
    assert "column 10: unknown field 'usr'" in result.output
    assert "         ^" in result.output
    assert "did you mean 'user'" in result.output


def test_needs_a_store_or_files() -> None:
    result = CliRunner(env={"KUBETRAIL_STORE": None}).invoke(cli, ["query", "code=403"])
    assert result.exit_code != 0
    assert "--store" in result.output


def _jq(program: str, log: Path) -> list[object]:
    output = subprocess.run(["jq", "-c", program, str(log)], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in output.splitlines()]


def test_object_history_names_who_created_it(log: Path) -> None:
    creates = _jq(
        'select(.objectRef.resource=="clusterrolebindings" and .verb=="create" and .stage=="ResponseComplete" '
        "and .responseStatus.code<400) | [.objectRef.name, .user.username]",
        log,
    )
    assert creates
    name, user = creates[0]  # type: ignore[misc]
    report = json.loads(
        _run(["investigate", "object", f"clusterrolebindings/{name}", "--file", str(log), "-o", "json"])
    )
    first = report["summary"][0]
    assert (first["verb"], first["user"]) == ("create", user)
    assert f"created by {user}" in report["headline"]
    assert all(event["event"]["objectRef"]["name"] == name for event in report["events"])


def test_timeline_counts_the_identity_requests(log: Path) -> None:
    requests = {item for item in _jq('select(.user.username=="system:serviceaccount:ci:default") | .auditID', log)}
    assert requests
    report = json.loads(_run(["investigate", "timeline", "--user", "sa:ci/default", "--file", str(log), "-o", "json"]))
    assert sum(session["requests"] for session in report["summary"]) == len(requests)
    table = _run(["investigate", "timeline", "--user", "sa:ci/default", "--file", str(log)])
    assert f"{len(requests)} request(s) in" in table


def test_anonymous_by_source_address(log: Path) -> None:
    addresses = {item for item in _jq('select(.user.username=="system:anonymous") | .sourceIPs[0]', log)}
    report = json.loads(_run(["investigate", "anonymous", "--file", str(log), "-o", "json"]))
    assert {row["source_ip"] for row in report["summary"]} == addresses


def test_new_identities_over_less_than_a_day_of_data_is_everyone(log: Path) -> None:
    users = {item for item in _jq(".user.username // empty", log)}
    report = json.loads(_run(["investigate", "new-identities", "--file", str(log), "-o", "json"]))
    assert {row["user"] for row in report["summary"]} == users
    later = json.loads(
        _run(["investigate", "new-identities", "--file", str(log), "-o", "json", "--since", "2026-03-19T10:03:00Z"])
    )
    assert {row["user"] for row in later["summary"]} < users


def test_sql_with_its_own_common_table_expressions(log: Path, expected: dict[str, set[Key]]) -> None:
    sql = "WITH stages AS (SELECT DISTINCT audit_id, stage FROM matched) SELECT count(*) AS n FROM stages"
    output = _run(["query", "code=403", "--file", str(log), "-o", "json", "--sql", sql])
    assert json.loads(output) == [{"n": len(expected["forbidden"])}]


def test_ndjson_with_fields_prints_those_fields(log: Path) -> None:
    output = _run(["query", "code=403", "--file", str(log), "-o", "ndjson", "--fields", "id,stage", "--limit", "0"])
    rows = [json.loads(line) for line in output.splitlines()]
    assert {(row["audit_id"], row["stage"]) for row in rows} == _keys(
        _run(["query", "code=403", "--file", str(log), "-o", "ndjson", "--limit", "0"])
    )
