"""Syntax of the filter language: structure, keywords, quoting and errors with columns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrail.query import QueryError, parse_filter
from kubetrail.query.nodes import And, Compare, Not, Or
from kubetrail.query.parser import parse


def test_terms_side_by_side_are_anded() -> None:
    root = parse("user=jane verb=get").root
    assert isinstance(root, And)
    assert [item.field.name for item in root.items if isinstance(item, Compare)] == ["user", "verb"]


def test_and_binds_tighter_than_or() -> None:
    root = parse("user=a verb=get or user=b").root
    assert isinstance(root, Or)
    assert isinstance(root.items[0], And)


def test_in_list_and_not_in() -> None:
    root = parse("verb not in (get, list ,watch)").root
    assert isinstance(root, Compare)
    assert root.op == "in" and root.negated
    assert [value.text for value in root.values] == ["get", "list", "watch"]


def test_keywords_are_case_insensitive_and_values_may_be_keywords() -> None:
    root = parse("NOT name=in").root
    assert isinstance(root, Not)
    assert isinstance(root.item, Compare)
    assert root.item.values[0].text == "in"


def test_quoted_values_keep_spaces_and_escapes() -> None:
    root = parse(r'ua="kubectl \"x\" y"' + " name='a=b'").root
    assert isinstance(root, And)
    values = [item.values[0].text for item in root.items if isinstance(item, Compare)]
    assert values == ['kubectl "x" y', "a=b"]


def test_words_keep_colons_slashes_and_at_signs() -> None:
    root = parse("user=system:serviceaccount:kube-system:x@y ip=10.0.0.0/8").root
    assert isinstance(root, And)
    values = [item.values[0].text for item in root.items if isinstance(item, Compare)]
    assert values == ["system:serviceaccount:kube-system:x@y", "10.0.0.0/8"]


def test_json_pointer_field() -> None:
    root = parse("event./requestObject/spec/hostNetwork=true").root
    assert isinstance(root, Compare)
    assert root.field.column == "/requestObject/spec/hostNetwork"


def test_empty_filter_has_no_root() -> None:
    assert parse("   ").root is None


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("user", 5, "expected an operator"),
        ("user jane", 6, "expected an operator"),
        ("colour=red", 1, "unknown field"),
        ("verb in get", 9, "expected '('"),
        ("verb in (get list)", 14, "expected ',' or ')'"),
        ("(user=x", 8, "expected ')'"),
        ("user=x)", 7, "unexpected token"),
        ('user="x', 6, "unterminated"),
        ("user=", 6, "expected a value"),
        ("user!x", 5, "'!'"),
        ("and user=x", 1, "expected a field name"),
        ("user=x or", 10, "expected a field name"),
        ("ns not x", 8, "expected 'in'"),
    ],
)
def test_syntax_errors_point_at_the_token(text: str, column: int, fragment: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_filter(text)
    assert raised.value.column == column
    assert fragment in str(raised.value)
    assert raised.value.caret().splitlines()[1] == " " * (column - 1) + "^"


def test_unknown_field_suggests_the_closest() -> None:
    with pytest.raises(QueryError) as raised:
        parse_filter("namespce=prod")
    assert "namespace" in raised.value.hint


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_query_error(text: str) -> None:
    try:
        parse_filter(text)
    except QueryError as error:
        assert 1 <= error.column <= len(text) + 1
