"""Reading NDJSON in place without DuckDB (`query --file -o ndjson`): the literal pre-filter never drops a line
that matches, and the events, their order and the refusals are those of the DuckDB reading of the same files."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetrail.cli.main import cli
from kubetrail.query import parse_filter, to_sql
from kubetrail.query.evaluate import compile_filter
from kubetrail.query.files import lines_select
from kubetrail.query.inplace import matching_events
from kubetrail.query.literals import needed, terms
from kubetrail.query.scan import scan_files
from kubetrail.query.source import open_files
from tests.query.events import event, write_ndjson
from tests.query.test_translate import DOCUMENTS

NOW = datetime(2026, 3, 19, 12, 30, tzinfo=UTC)

# Terms the Python evaluator compiles (no globs, IP ranges or JSON pointers), as written by hand.
SUPPORTED_TERMS = [
    "resource=secrets",
    "resource=pods",
    "subresource=exec",
    "ns=prod",
    'ns=""',
    "ns!=prod",
    "code=403",
    "code>=400",
    "code=2xx",
    "code<300",
    "code in (101,403)",
    "verb in (create,get)",
    "verb not in (create)",
    "group=system:unauthenticated",
    "group in (system:masters,system:serviceaccounts)",
    "sa=kube-system/default",
    "since=2026-03-19T11:00:00Z",
    "until=2h",
    "since=3h",
    "time>=2026-03-19T10:30:00Z",
    "stagetime<2026-03-19T12:00:00Z",
    "user=bob",
    "user>m",
    "decision=forbid",
    'reason=""',
    "apigroup=rbac.authorization.k8s.io",
    "level=Request",
    "stage!=ResponseComplete",
    "cluster=default",
    "id in (a,c,e)",
]


def supported_filters() -> st.SearchStrategy[str]:
    return st.recursive(
        st.sampled_from(SUPPORTED_TERMS),
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"{a} {b}", inner, inner),
            st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
        ),
        max_leaves=4,
    )


def _escaped(text: str, rng: random.Random) -> str:
    """JSON text with some ASCII letters of its strings written as `\\u00XX` escapes (still the same JSON)."""
    out: list[str] = []
    in_string = False
    backslash = False
    for char in text:
        if in_string and not backslash and char.isalnum() and rng.random() < 0.3:
            out.append(f"\\u{ord(char):04{rng.choice('xX')}}")
            continue
        out.append(char)
        if backslash:
            backslash = False
        elif char == "\\":
            backslash = True
        elif char == '"':
            in_string = not in_string
    return "".join(out)


def encodings(document: dict[str, Any], seed: int) -> list[bytes]:
    """The same event as different encoders write it: compact, spaced, ASCII-escaped, letters escaped."""
    rng = random.Random(seed)
    compact = json.dumps(document, separators=(",", ":"))
    return [
        compact.encode(),
        json.dumps(document, separators=(", ", " : ")).encode(),
        json.dumps(document, ensure_ascii=True).encode(),
        _escaped(compact, rng).encode(),
    ]


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(":memory:") as conn:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn


def duckdb_matches(conn: duckdb.DuckDBPyConnection, lines: list[bytes], text: str) -> list[bool]:
    """The DuckDB translation's verdict on each line, as reading files in place gives it (the oracle)."""
    clause, params = to_sql(parse_filter(text), now=NOW)
    sql = f"SELECT count(*) FROM ({lines_select('(SELECT ?::VARCHAR AS event)', 'default')}) WHERE {clause}"
    return [conn.execute(sql, [line.decode(), *params]).fetchone() == (1,) for line in lines]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(supported_filters(), st.integers(0, 2**16))
def test_the_literal_prefilter_never_drops_a_matching_line(
    duck: duckdb.DuckDBPyConnection, text: str, seed: int
) -> None:
    """Whatever the encoder (spacing, escapes of the very letters searched for), a line DuckDB says matches
    passes the pre-filter, and the Python evaluator agrees with DuckDB on every line."""
    parsed = parse_filter(text)
    found = terms(parsed)
    predicate = compile_filter(parsed, now=NOW)
    lines = [line for document in DOCUMENTS for line in encodings(document, seed)]
    for line, matches in zip(lines, duckdb_matches(duck, lines, text), strict=True):
        if matches:
            assert needed(line, found), (text, line)
        assert predicate(json.loads(line)) is matches, (text, line)


def test_an_escaped_value_is_found_and_a_value_inside_another_is_not() -> None:
    secrets = json.dumps(event("x", resource="secrets")).replace('"secrets"', '"\\u0073ecrets"').encode()
    assert needed(secrets, terms(parse_filter("resource=secrets")))
    assert not needed(b'{"objectRef":{"resource":"mysecrets"}}', terms(parse_filter("resource=secrets")))
    assert not needed(b'{"responseStatus":{"code":200}}', terms(parse_filter("code=403")))
    # a term under `or` or `not` implies no needle: the line may match without it
    assert terms(parse_filter("resource=secrets or verb=get")) == []
    assert terms(parse_filter("not resource=secrets")) == []


def _events_of(path: Path, text: str, **options: Any) -> list[str]:
    found = matching_events([path], parse_filter(text), now=NOW, **options)
    assert found is not None
    return [line.decode() for line in found.lines]


def _duckdb_events(path: Path, text: str, *, order: str = "asc", limit: int = 0) -> list[str]:
    with open_files([path]) as source:
        table = source.select(text, columns=["event"], order=order, limit=limit, now=NOW)
    return [line.rstrip("\n") for line in table.column("event").to_pylist()]


def _ids(lines: list[str]) -> list[str]:
    return [json.loads(line)["auditID"] for line in lines]


def many_documents(count: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        minute, second = divmod(rng.randrange(3600), 60)
        documents.append(
            event(
                f"id-{index:05d}",
                time=f"2026-03-19T{10 + index % 3}:{minute:02d}:{second:02d}.{rng.randrange(10**6):06d}Z",
                verb=rng.choice(["get", "list", "create", "delete", "patch"]),
                resource=rng.choice(["pods", "secrets", "configmaps", None]),
                subresource=rng.choice([None, None, "exec", "log"]),
                namespace=rng.choice(["prod", "dev", None]),
                api_group=rng.choice([None, "apps", "rbac.authorization.k8s.io"]),
                code=rng.choice([200, 201, 403, 404, 500, None]),
                user=rng.choice(["jane@example.com", "bob", "system:serviceaccount:kube-system:default"]),
            )
        )
    return documents


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ndjson(tmp_path_factory.mktemp("inplace") / "audit.log", many_documents(3000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(supported_filters(), st.booleans(), st.sampled_from([0, 1, 7]))
def test_events_and_their_order_are_those_of_duckdb(log: Path, text: str, descending: bool, limit: int) -> None:
    ours = _events_of(log, text, descending=descending, limit=limit)
    theirs = _duckdb_events(log, text, order="desc" if descending else "asc", limit=limit)
    assert _ids(ours) == _ids(theirs)
    assert ours == theirs


def test_scanning_in_stretches_and_tiny_blocks_finds_the_same_lines(log: Path) -> None:
    """Several processes over line-aligned stretches, and blocks smaller than a line, change nothing."""
    parsed = parse_filter("resource=secrets verb in (get,list)")
    predicate = compile_filter(parsed, now=NOW)
    whole = scan_files([log], terms(parsed), predicate, workers=1)
    for workers, block_bytes in ((2, 1 << 20), (3, 1 << 20), (1, 64), (2, 200)):
        other = scan_files([log], terms(parsed), predicate, workers=workers, block_bytes=block_bytes, parallel_bytes=1)
        assert other.matches == whole.matches
        assert other.lines_of == whole.lines_of == {log: 3000}
    assert len(whole.matches) > 10


def test_gzip_and_rotated_sets_read_through_the_intake(tmp_path: Path) -> None:
    documents = many_documents(600, seed=5)
    lines = [json.dumps(document) + "\n" for document in documents]
    logs = tmp_path / "audit"
    logs.mkdir()
    (logs / "audit-2026-03-19T09-00-00.000.log.gz").write_bytes(gzip.compress("".join(lines[:200]).encode()))
    (logs / "audit-2026-03-19T10-00-00.000.log").write_text("".join(lines[200:400]))
    (logs / "audit.log").write_text("".join(lines[400:]))
    found = matching_events([logs], parse_filter("code=403"), now=NOW)
    assert found is not None
    with open_files([logs]) as source:
        expected = source.select("code=403", columns=["event"], now=NOW).column("event").to_pylist()
    assert [line.decode() for line in found.lines] == [line.rstrip("\n") for line in expected]
    assert found.tally.files == 3 and found.tally.events == 600 and not found.tally.rejected


def test_values_duckdb_reads_its_own_way_are_left_to_duckdb(tmp_path: Path) -> None:
    """A code written as a string or a float, a time that is not RFC 3339: DuckDB's reading decides."""
    documents = [
        event("plain", code=403),
        event("text-code", extra={"responseStatus": {"code": "403"}}),
        event("float-code", extra={"responseStatus": {"code": 403.0}}),
        event("odd-time", code=403, time="2026-03-19 10:00:00"),
        event("other", code=200),
    ]
    path = write_ndjson(tmp_path / "audit.log", documents)
    for text in ("code=403", "code=403 since=2026-03-19T09:00:00Z", "code!=403"):
        assert _events_of(path, text) == _duckdb_events(path, text), text


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_escaped_events_as_written_and_reports_refused_candidates(tmp_path: Path) -> None:
    escaped = json.dumps(event("esc", resource="secrets")).replace('"secrets"', '"\\u0073ecr\\u0065ts"')
    truncated = json.dumps(event("cut", resource="secrets"))[:150]
    blank = "   "
    lines = [json.dumps(event(f"n{i}", resource="pods")) for i in range(5)]
    path = tmp_path / "audit.log"
    path.write_text("\n".join([lines[0], escaped, lines[1], blank, truncated, *lines[2:]]) + "\n")
    code, out, err = _cli("query", "--file", str(path), "resource=secrets", "-o", "ndjson", "--limit", "0")
    assert code == 0, err
    assert out == escaped + "\n"
    assert f"warning: refused {path}:5: " in err
    code, out, err = _cli("query", "--file", str(path), "resource=pods", "-o", "ndjson", "--limit", "0", "--strict")
    assert code == 1 and f"warning: refused {path}:5: " in err
    assert _ids(out.splitlines()) == [f"n{i}" for i in range(5)]


def test_cli_window_flags_and_cluster_label_apply(log: Path) -> None:
    args = ["query", "--file", str(log), "code=403", "-o", "ndjson", "--limit", "0"]
    code, out, _ = _cli(*args, "--since", "2026-03-19T11:00:00Z", "--until", "2026-03-19T12:00:00Z")
    assert code == 0
    times = [json.loads(line)["requestReceivedTimestamp"] for line in out.splitlines()]
    assert times and all("2026-03-19T11:" in time for time in times)
    assert times == sorted(times)
    code, out, _ = _cli(*args, "--cluster", "prod")
    assert code == 0 and len(out.splitlines()) == len(_duckdb_events(log, "code=403"))
    code, out, _ = _cli("query", "--file", str(log), "code=403 cluster=prod", "-o", "ndjson", "--cluster", "prod")
    assert code == 0 and len(out.splitlines()) == 100
