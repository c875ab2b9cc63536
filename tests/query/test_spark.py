"""Spark answers every filter exactly as DuckDB does, on a store (sealed and unsealed rows) and on a lake."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kubetrail.model import decode_event
from kubetrail.query import QueryError, parse_filter
from kubetrail.query.source import Window, open_store
from kubetrail.query.spark import glob_to_regex, pointer_to_jsonpath, to_spark_sql
from kubetrail.store import Store
from tests.query.events import event, fill_store
from tests.query.test_translate import CASES, DOCUMENTS

MORE_CASES = [
    "name~web-?",
    'name~"[a-c]*"',
    'name~"[!w]*"',
    'name~"*-[0-9]"',
    "user~*@example.com",
    "user~*@EXAMPLE.com",
    'ua~"*(linux/amd64)*"',
    "uri~/api/v1/*/default/*",
    "ip=10.0.0.7 or ip=2001:db8::/32",
    "ip in (192.168.1.9,2001:db8::17)",
    "ip~10.*",
    "event./requestObject/spec/replicas in (3,4)",
    "event./requestObject/spec/hostNetwork~tr*",
    "event./objectRef/resource=pods",
    "stagetime<2026-03-19T11:00:00Z",
    "code in (101,403)",
    "level!=Metadata",
    "not group~system:*",
]
TEXTS = [text for text, _ in CASES] + MORE_CASES
UNSEALED = [
    event(
        "u1", verb="delete", resource="secrets", namespace="prod", name="api-key", time="2026-03-20T08:00:00.000000Z"
    ),
    event("u2", verb="patch", resource="deployments", namespace="dev", name="web-3", code=422, ips=("10.1.2.3",)),
]


def _java_available() -> bool:
    return shutil.which("java") is not None


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local Spark session for the whole module: starting one costs about ten seconds."""
    pytest.importorskip("pyspark")
    if not _java_available():
        pytest.skip("no Java runtime for Spark")
    from kubetrail.query.spark_source import spark_session

    session = spark_session("local[1]", app_name="kubetrail-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The translator's documents sealed to Parquet, plus two acknowledged events still in the write-ahead log."""
    directory = tmp_path_factory.mktemp("spark") / "store"
    store = Store.open(directory)
    for documents in (DOCUMENTS, UNSEALED):
        raws = [json.dumps(document).encode() for document in documents]
        store.append("default", [decode_event(raw) for raw in raws], raws)
        if documents is DOCUMENTS:
            store.seal()
    store.close(seal=False)
    return directory


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda row: (row["audit_id"] or "", row["stage"] or ""))


def _batched_ids(spark_source: Any, texts: list[str]) -> dict[str, set[str]]:
    """Every filter's matching ids in one Spark job (a UNION ALL), to keep the module fast."""
    parts: list[str] = []
    args: dict[str, object] = {}
    for index, text in enumerate(texts):
        prefix = "".join(chr(ord("a") + int(digit)) for digit in f"{index:03d}")
        clause, more = to_spark_sql(parse_filter(text), prefix=f"q{prefix}")
        parts.append(f"SELECT {index} AS k, audit_id FROM events WHERE {clause}")
        args.update(more)
    table = spark_source.sql(" UNION ALL ".join(parts), args)
    found: dict[str, set[str]] = {text: set() for text in texts}
    for key, audit_id in zip(table.column("k").to_pylist(), table.column("audit_id").to_pylist(), strict=True):
        found[texts[key]].add(audit_id)
    return found


def _duckdb_ids(directory: Path, texts: list[str]) -> dict[str, set[str]]:
    with open_store(directory) as source:
        return {text: set(source.select(text, columns=["audit_id"]).column("audit_id").to_pylist()) for text in texts}


def test_every_filter_selects_the_same_events_as_duckdb(spark: Any, store: Path) -> None:
    from kubetrail.query.spark_source import open_spark_source

    expected = _duckdb_ids(store, TEXTS)
    assert expected["resource=secrets"] == {"a", "b", "u1"}  # the unsealed tail is there too
    with open_spark_source(spark, store=store) as source:
        found = _batched_ids(source, TEXTS)
    mismatches = {text: (found[text], expected[text]) for text in TEXTS if found[text] != expected[text]}
    assert not mismatches


@pytest.mark.parametrize("text", ["", "resource=secrets verb in (get,delete)", "ip=10.0.0.0/8 not ns=prod"])
def test_whole_rows_and_their_order_are_the_same(spark: Any, store: Path, text: str) -> None:
    from kubetrail.query.spark_source import open_spark_source

    window = Window(since="2026-03-19T00:00:00Z", cluster="default")
    with open_store(store) as source:
        expected = source.select(text, window, limit=0, order="desc")
    with open_spark_source(spark, store=store) as source:
        found = source.select(text, window, limit=0, order="desc")
    assert found.column_names == expected.column_names
    assert found.column("audit_id").to_pylist() == expected.column("audit_id").to_pylist()
    assert found.to_pylist() == expected.to_pylist()


def test_since_counts_back_from_now(spark: Any, store: Path) -> None:
    from kubetrail.query.spark_source import open_spark_source

    now = datetime(2026, 3, 19, 12, 30, tzinfo=UTC)
    with open_spark_source(spark, store=store) as source:
        assert set(source.select("since=1h", columns=["audit_id"], now=now).column(0).to_pylist()) == {"f", "u1"}
        assert set(source.select("until=1h", columns=["audit_id"], now=now).column(0).to_pylist()) == {*"abcde", "u2"}


def test_values_are_arguments_never_sql(spark: Any, store: Path) -> None:
    from kubetrail.query.spark_source import open_spark_source

    clause, args = to_spark_sql(parse_filter('user="x\' OR 1=1 --" ns=prod'))
    assert "OR 1=1" not in clause
    assert list(args.values()) == ["x' OR 1=1 --", "prod"]
    with open_spark_source(spark, store=store) as source:
        assert source.select('user="x\' OR 1=1 --"').num_rows == 0
        with pytest.raises(QueryError, match="cannot run the query"):
            source.sql("SELECT nope FROM events")


def test_a_lake_keeps_one_copy_of_redelivered_batches(spark: Any, tmp_path: Path) -> None:
    lake_module = pytest.importorskip("kubetrail.bus.lake")
    from kubetrail.query.spark_source import open_spark_source

    lake = tmp_path / "lake"
    first, second = DOCUMENTS[:4], DOCUMENTS[2:]  # c and d were stored by both workers
    fill_store(lake_module.worker_store_dir(lake, "receiver-a"), first)
    fill_store(lake_module.worker_store_dir(lake, "receiver-b"), second, cluster="default")
    other = [event("x", verb="watch")]
    raws = [json.dumps(document).encode() for document in other]
    tail_store = Store.open(lake_module.worker_store_dir(lake, "receiver-c"))
    tail_store.append("staging", [decode_event(raw) for raw in raws], raws)
    tail_store.close(seal=False)
    conn = lake_module.open_lake(lake)
    expected = _rows(conn.sql("SELECT * FROM events").to_arrow_table())
    conn.close()
    assert [row["audit_id"] for row in expected] == ["a", "b", "c", "d", "e", "f", "x"]
    with open_spark_source(spark, lake=lake) as source:
        assert _rows(source.select("", limit=0)) == expected
        assert _rows(source.select("cluster=staging", limit=0))[0]["audit_id"] == "x"


@pytest.mark.parametrize(
    ("pattern", "regex"),
    [
        ("web-*", r"(?s)^web\x{2d}.*\z"),
        ("a?c", r"(?s)^a.c\z"),
        ("[!a-c]x", r"(?s)^[^a-c]x\z"),
        ("[]]", r"(?s)^[\x{5d}]\z"),
        (r"a\*", r"(?s)^a\x{2a}\z"),
        ("[abc", "(?!)"),
        ("a\\", "(?!)"),
        ("é", r"(?s)^\x{e9}\z"),
    ],
)
def test_glob_patterns_become_anchored_java_regexes(pattern: str, regex: str) -> None:
    assert glob_to_regex(pattern) == regex


def test_json_pointers_become_jsonpath() -> None:
    assert pointer_to_jsonpath("/requestObject/spec/containers/0/image") == (
        "$['requestObject']['spec']['containers'][0]['image']"
    )
    assert pointer_to_jsonpath("/metadata/annotations/a~1b~0c") == "$['metadata']['annotations']['a/b~c']"
    assert pointer_to_jsonpath("/it's") is None
    with pytest.raises(QueryError):
        to_spark_sql(parse_filter("event./a]b=1"))


@pytest.mark.parametrize(
    "arguments",
    [
        ["resource=secrets or code>=400", "-o", "csv", "--limit", "0", "--desc"],
        ["ns=prod", "--since", "2026-03-19T11:00:00Z", "-o", "json", "--fields", "time,user,verb,name,groups"],
        ["", "--sql", "SELECT verb, count(*) AS n FROM matched GROUP BY verb ORDER BY n DESC, verb", "-o", "csv"],
    ],
)
def test_the_query_command_prints_the_same_with_either_engine(spark: Any, store: Path, arguments: list[str]) -> None:
    from click.testing import CliRunner

    from kubetrail.cli.main import cli

    outputs = []
    for engine in ("duckdb", "spark"):
        result = CliRunner().invoke(cli, ["query", "--engine", engine, "--store", str(store), *arguments])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].strip()
    assert spark.sparkContext._jsc is not None  # the command left the running session alone


def test_spark_does_not_read_log_files_in_place(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kubetrail.cli.main import cli

    log = tmp_path / "audit.log"
    log.write_text(json.dumps(DOCUMENTS[0]) + "\n")
    result = CliRunner().invoke(cli, ["query", "--engine", "spark", "--file", str(log), "verb=get"])
    assert result.exit_code == 2
    assert "--engine spark reads a --store or a --lake" in result.output
