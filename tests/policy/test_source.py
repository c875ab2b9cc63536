"""parse_source: values as kube-apiserver reads them (JSON when the text starts with `{`, else the
first YAML document with the Go YAML library's YAML 1.1 scalars) and a line for every field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.policy.source import (
    SourceSyntaxError,
    format_field_path,
    parse_source,
    resolve_plain_scalar,
)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("rules",), "rules"),
        (("rules", 0, "level"), "rules[0].level"),
        (("rules", 2, "resources", 1, "group"), "rules[2].resources[1].group"),
        (("omitStages", 0), "omitStages[0]"),
    ],
)
def test_field_paths_render_like_the_apiserver(path: tuple[str | int, ...], text: str) -> None:
    assert format_field_path(path) == text


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("Metadata", "Metadata"),
        ("None", "None"),
        ("y", True),
        ("Yes", True),
        ("on", True),
        ("n", False),
        ("OFF", False),
        ("~", None),
        ("null", None),
        ("42", 42),
        ("-7", -7),
        ("+1", 1),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("08", 8.0),
        ("10:30", "10:30"),
        ("2026-03-19", "2026-03-19"),
        ("/healthz*", "/healthz*"),
        ("system:kube-proxy", "system:kube-proxy"),
        ("1.2.3", "1.2.3"),
        ("-", "-"),
    ],
)
def test_plain_scalars_resolve_as_go_yaml_v2(scalar: str, value: object) -> None:
    resolved = resolve_plain_scalar(scalar)
    assert resolved == value
    assert type(resolved) is type(value)


def test_special_floats() -> None:
    assert math.isnan(resolve_plain_scalar(".nan"))
    assert resolve_plain_scalar("-.inf") == -math.inf


def test_quoted_scalars_stay_text() -> None:
    document = parse_source("a: 'y'\nb: \"42\"\nc: y\nd: 42\n")
    assert document.value == {"a": "y", "b": "42", "c": True, "d": 42}


def test_lines_of_fields_and_items() -> None:
    document = parse_source("kind: Policy\nrules:\n  - level: None\n    users:\n      - a\n      - b\n")
    assert document.line_of(("kind",)) == 1
    assert document.line_of(("rules",)) == 2
    assert document.line_of(("rules", 0)) == 3
    assert document.line_of(("rules", 0, "users", 1)) == 6
    assert document.line_of(("rules", 0, "verbs")) == 3


def test_only_the_first_yaml_document_is_read() -> None:
    document = parse_source("a: 1\n---\nb: 2\n---\nc: 3\n")
    assert document.value == {"a": 1}
    assert document.extra_documents == 2


def test_empty_text_has_no_value() -> None:
    assert parse_source("").value is None
    assert parse_source("# only a comment\n").value is None


def test_duplicate_keys_keep_the_last_value_and_are_reported() -> None:
    document = parse_source("a: 1\nb: 2\na: 3\n")
    assert document.value == {"a": 3, "b": 2}
    assert [(d.path, d.line) for d in document.duplicates] == [(("a",), 3)]


def test_merge_keys_are_applied() -> None:
    document = parse_source("base: &b {p: 1, q: 2}\nitem:\n  <<: *b\n  q: 3\n")
    assert document.value["item"] == {"p": 1, "q": 3}


def test_json_is_read_strictly_with_lines() -> None:
    text = '{\n\t"a": [1, 2],\n\t"b": {"c": "\\u00e9\\/"}\n}'
    document = parse_source(text)
    assert document.is_json
    assert document.value == {"a": [1, 2], "b": {"c": "é/"}}
    assert document.line_of(("b", "c")) == 3


@pytest.mark.parametrize(
    "text",
    ["{a: 1}", '{"a": NaN}', '{"a": 1,}', '{"a": 1} {"b": 2}', '{"a": 1} # note', "{'a': 1}"],
)
def test_text_starting_with_a_brace_must_be_json(text: str) -> None:
    with pytest.raises(SourceSyntaxError) as caught:
        parse_source(text)
    assert "JSON" in str(caught.value)


def test_yaml_errors_carry_line_and_column() -> None:
    with pytest.raises(SourceSyntaxError) as caught:
        parse_source("a: 1\nb: [1, 2\nc: 3\n")
    assert caught.value.line is not None and caught.value.line >= 2
    assert caught.value.column is not None


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz:-/.", min_size=1, max_size=12).filter(lambda s: s[0].isalpha())


@settings(deadline=None)
@given(st.dictionaries(names, st.lists(names, max_size=4), min_size=1, max_size=5))
def test_json_and_yaml_spellings_agree(mapping: dict[str, list[str]]) -> None:
    import json

    yaml_text = "".join(f"{key!r}: [{', '.join(repr(v) for v in values)}]\n" for key, values in mapping.items())
    assert parse_source(json.dumps(mapping, indent=2)).value == mapping
    assert parse_source(yaml_text).value == mapping
