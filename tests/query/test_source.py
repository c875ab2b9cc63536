"""Sources: log files read in place answer exactly like a store, with or without the raw-line prefilter."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from kubetrail.model import decode_event
from kubetrail.query import QueryError, parse_filter
from kubetrail.query.source import Source, Window, line_prefilter, open_files, open_store
from kubetrail.store import Store
from tests.query.events import fill_store, write_ndjson
from tests.query.test_translate import CASES, DOCUMENTS


def _ids(source: Source, text: str) -> set[str]:
    return set(source.select(text, columns=["audit_id"]).column("audit_id").to_pylist())


@pytest.fixture(scope="module")
def compact_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documents as Go writes them: no spaces between tokens."""
    path = tmp_path_factory.mktemp("compact") / "audit.log"
    path.write_text("".join(json.dumps(item, separators=(",", ":")) + "\n" for item in DOCUMENTS))
    return path


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_files_answer_like_the_store_with_and_without_prefilter(
    text: str, expected: str, tmp_path: Path, compact_log: Path
) -> None:
    spaced = write_ndjson(tmp_path / "spaced.log", DOCUMENTS)
    for path in (spaced, compact_log):
        with open_files([path]) as source:
            assert source.raw_lines
            assert _ids(source, text) == set(expected), path.name
            source.raw_lines = False
            assert _ids(source, text) == set(expected), path.name


def test_the_store_answers_the_same(tmp_path: Path) -> None:
    with open_store(fill_store(tmp_path / "store", DOCUMENTS)) as source:
        assert source.relation == "sealed"  # nothing left in the write-ahead log
        for text, expected in CASES:
            assert _ids(source, text) == set(expected), text


def test_prefilter_needs_every_quoted_value_and_skips_what_is_not_verbatim() -> None:
    clause, params = line_prefilter(parse_filter('resource=secrets verb in (get,list) name~web-* ua="a<b" ns!=x'))
    assert params == ['secrets"', 'get"', 'list"']
    assert clause.count("contains") == 3
    assert line_prefilter(parse_filter("resource=secrets or verb=get")) == ("true", [])


def test_prefilter_numbers_are_whole_json_numbers(tmp_path: Path) -> None:
    documents = [dict(item) for item in DOCUMENTS]
    # 4030 and a string "403" must not pass for code=403
    documents[0] = {**documents[0], "responseStatus": {"metadata": {}, "code": 4030}, "auditID": "x403"}
    with open_files([write_ndjson(tmp_path / "audit.log", documents)]) as source:
        assert _ids(source, "code=403") == {"b"}


def test_gzip_is_read_in_place_by_content(tmp_path: Path) -> None:
    plain = write_ndjson(tmp_path / "audit.log", DOCUMENTS)
    packed = tmp_path / "audit-2026-03-19T09-00-00.000.log"  # gzip'd without a .gz name
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with open_files([packed]) as source:
        assert _ids(source, "resource=secrets") == {"a", "b"}


def test_cluster_label_for_files(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)], cluster="prod") as source:
        assert _ids(source, "cluster=prod") == set("abcdef")
        assert _ids(source, "cluster=default") == set()


def test_window_terms_are_checked() -> None:
    assert Window(since="1h", cluster="prod").terms() == ['since="1h"', 'cluster="prod"']
    with pytest.raises(QueryError, match="--since yesterday"):
        Window(since="yesterday").terms()


def test_database_errors_become_query_errors(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source, pytest.raises(QueryError):
        source.sql("SELECT nope FROM events")


def test_unsealed_events_are_queried_too(tmp_path: Path) -> None:
    raws = [json.dumps(item).encode() for item in DOCUMENTS]
    store = Store.open(tmp_path / "store")
    store.append("default", [decode_event(raw) for raw in raws], raws)
    store.close(seal=False)
    with open_store(tmp_path / "store") as source:
        assert source.relation == "events"
        for text, expected in CASES:
            assert _ids(source, text) == set(expected), text


def test_lines_that_are_not_json_objects_are_left_out(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "audit.log", DOCUMENTS)
    path.write_text(path.read_text() + "not json at all\n\n[1, 2]\n")
    with open_files([path]) as source:
        assert _ids(source, "") == set("abcdef")
        assert _ids(source, "not resource=secrets") == set("cdef")


def test_invalid_utf8_is_replaced_as_the_store_does(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "audit.log", DOCUMENTS)
    broken = json.dumps({**DOCUMENTS[0], "auditID": "z", "requestURI": "/x-MARK"}).encode().replace(b"MARK", b"\xff")
    path.write_bytes(path.read_bytes() + broken + b"\n")
    with open_files([path]) as source:
        table = source.select("id=z", columns=["request_uri"])
        assert table.column("request_uri").to_pylist() == ["/x-\ufffd"]
        assert _ids(source, "resource=secrets") == {"a", "b", "z"}
