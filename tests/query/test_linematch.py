"""Matching lines of a block with Arrow's RE2 kernels (kubetrail.query.linematch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubetrail.query.evaluate import compile_filter
from kubetrail.query.filter import parse_filter
from kubetrail.query.linematch import (
    count_true,
    holding,
    indices,
    number_pattern,
    pattern,
    rare_part,
    split_lines,
)
from kubetrail.query.literals import terms
from kubetrail.query.scan import scan_files
from tests.query.events import event


def _lines(text: bytes) -> list[bytes]:
    buffer = bytearray(text)
    return [item.as_py() for item in split_lines(buffer, len(buffer))]


@given(st.lists(st.binary(max_size=30).map(lambda item: item.replace(b"\n", b"")), max_size=20), st.booleans())
def test_split_lines_cuts_at_every_newline_as_bytes_split_does(lines: list[bytes], final_newline: bool) -> None:
    text = b"\n".join(lines) + (b"\n" if final_newline else b"")
    assert _lines(text) == text.split(b"\n")


def test_split_lines_owns_its_bytes() -> None:
    buffer = bytearray(b'{"a":1}\n{"b":2}\n')
    lines = split_lines(buffer, len(buffer))
    buffer[:] = b"x" * len(buffer)
    buffer.extend(b"more")  # no view of the buffer is left behind
    assert [item.as_py() for item in lines] == [b'{"a":1}', b'{"b":2}', b""]


def test_a_number_matches_where_json_writes_that_integer_and_nowhere_else() -> None:
    lines = [
        b'{"responseStatus":{"code":403}}',
        b'{"responseStatus": {"code": 403 }}',
        b'{"code":403.0}',
        b'{"code":403e0}',
        b'{"code":403',
        b'{"code":4031}',
        b'{"stageTimestamp":"2026-03-19T10:00:00.403123Z"}',
    ]
    buffer = bytearray(b"\n".join(lines))
    mask = holding(split_lines(buffer, len(buffer)), number_pattern(b"403"))
    assert indices(mask) == [0, 1, 2, 3, 4]


def test_literals_with_regex_metacharacters_match_as_written() -> None:
    buffer = bytearray(
        b'{"apiGroup":"rbac.authorization.k8s.io"}\n{"apiGroup":"rbacXauthorizationXk8sXio"}\n{"u":"a+b"}'
    )
    lines = split_lines(buffer, len(buffer))
    assert indices(holding(lines, pattern([b'"rbac.authorization.k8s.io"']))) == [0]
    assert indices(holding(lines, pattern([b'"a+b"', b"\\u00"]))) == [2]
    assert count_true(holding(lines, pattern([b"absent"]))) == 0


def test_rare_part_is_a_suffix_that_still_holds_three_bytes() -> None:
    sample = b'"exec","execute","pods","secrets"' * 100
    for literal in (b'"exec"', b'"secrets"', b'"rbac.authorization.k8s.io"', b"403", b'"a"'):
        part = rare_part(literal, sample)
        assert literal.endswith(part) and len(part) >= min(3, len(literal))
    assert rare_part(b'"exec"', sample) == b'xec"'  # x is the rarest byte of "exec" in the sample


def test_a_file_without_a_final_newline_and_with_blank_lines_scans_alike_in_stretches(tmp_path: Path) -> None:
    documents = [event(f"id-{index}", resource="secrets" if index % 3 else "pods") for index in range(200)]
    text = "\n".join(
        json.dumps(document) + ("\n" if index % 50 == 0 else "") for index, document in enumerate(documents)
    )
    path = tmp_path / "audit.log"
    path.write_text(text)  # no final newline; a blank line after every fiftieth event
    parsed = parse_filter("resource=secrets")
    predicate = compile_filter(parsed)
    whole = scan_files([path], terms(parsed), predicate, workers=1)
    assert len(whole.matches) == sum(1 for index in range(200) if index % 3)
    assert whole.lines_of == {path: text.count("\n") + 1}
    for workers, block_bytes in ((2, 300), (3, 1 << 12), (2, 1 << 20)):
        other = scan_files([path], terms(parsed), predicate, workers=workers, block_bytes=block_bytes, parallel_bytes=1)
        assert other.matches == whole.matches
        assert other.lines_of == whole.lines_of
        assert other.refused_files == whole.refused_files == []


def test_a_log_truncated_during_the_scan_ends_it_early_without_a_crash(tmp_path: Path) -> None:
    """A live log copy-truncated by logrotate while `query --file` reads it: the lines still there are
    scanned; no process dies on the pages that went away."""
    documents = [event(f"id-{index}", resource="secrets") for index in range(400)]
    path = tmp_path / "audit.log"
    path.write_text("".join(json.dumps(document) + "\n" for document in documents))
    parsed = parse_filter("resource=secrets")
    exact = compile_filter(parsed)
    truncated = False

    def truncating(event: Any) -> bool:
        nonlocal truncated
        if not truncated:
            truncated = True
            os.truncate(path, 0)  # copytruncate: the file is emptied in place
        return exact(event)

    found = scan_files([path], terms(parsed), truncating, workers=2, block_bytes=1 << 12, parallel_bytes=1)
    ids = [json.loads(line)["auditID"] for _, line in found.matches]
    assert ids and set(ids) <= {f"id-{index}" for index in range(400)}  # a line cut by the truncation is refused
