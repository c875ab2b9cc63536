"""The condition language's grammar: precedence, values, lists and located syntax errors."""

from __future__ import annotations

import pytest

from kubetrail.detect.nodes import And, Check, FieldRef, Item, MacroRef, Not, Or, ValueList
from kubetrail.detect.parser import ParseError, parse_condition


def test_and_binds_tighter_than_or() -> None:
    expr = parse_condition("a or b and c")
    assert isinstance(expr, Or)
    assert isinstance(expr.children[1], And)


def test_not_applies_to_the_next_check_only() -> None:
    expr = parse_condition("not a and b")
    assert isinstance(expr, And)
    assert isinstance(expr.children[0], Not)
    assert isinstance(expr.children[1], MacroRef)


def test_double_negation_cancels_and_not_paren_form() -> None:
    assert isinstance(parse_condition("not not a"), MacroRef)
    expr = parse_condition("not(a or b)")
    assert isinstance(expr, Not)
    assert isinstance(expr.child, Or)


def test_parentheses_group() -> None:
    expr = parse_condition("(a or b) and c")
    assert isinstance(expr, And)
    assert isinstance(expr.children[0], Or)


def test_keywords_may_be_followed_by_a_parenthesis() -> None:
    expr = parse_condition("a and(b or c)or(d)")
    assert isinstance(expr, Or)


def test_check_with_bare_and_quoted_values() -> None:
    check = parse_condition('ka.user.name=system:anonymous and ka.auth.decision="allow"')
    assert isinstance(check, And)
    first, second = check.children
    assert isinstance(first, Check) and isinstance(second, Check)
    assert first.field == FieldRef("ka.user.name", None, first.field.pos)
    assert isinstance(first.value, Item) and first.value.text == "system:anonymous" and first.value.bare
    assert isinstance(second.value, Item) and second.value.text == "allow" and not second.value.bare


def test_field_arguments_bare_and_quoted() -> None:
    check = parse_condition("jevt.value[/annotations/authorization.k8s.io~1decision] exists")
    assert isinstance(check, Check)
    assert check.field.arg == "/annotations/authorization.k8s.io~1decision"
    assert check.op == "exists" and check.value is None
    quoted = parse_condition('ka.uri.param["a b"] = x')
    assert isinstance(quoted, Check) and quoted.field.arg == "a b"


@pytest.mark.parametrize(
    ("text", "op"),
    [
        ("ka.verb = get", "="),
        ("ka.verb == get", "=="),
        ("ka.verb != get", "!="),
        ("ka.response.code < 300", "<"),
        ("ka.response.code <= 300", "<="),
        ("ka.response.code > 300", ">"),
        ("ka.response.code >= 300", ">="),
        ("ka.uri contains /exec", "contains"),
        ("ka.uri icontains /EXEC", "icontains"),
        ("ka.uri startswith /api", "startswith"),
        ("ka.uri endswith /exec", "endswith"),
        ("ka.uri glob '/api/*'", "glob"),
        ("ka.uri iglob '/API/*'", "iglob"),
        ("ka.uri regex '^/api/.*'", "regex"),
        ("ka.uri pmatch (/api)", "pmatch"),
        ("ka.verb in (get, list)", "in"),
        ("ka.user.groups intersects (a)", "intersects"),
    ],
)
def test_every_operator_parses(text: str, op: str) -> None:
    check = parse_condition(text)
    assert isinstance(check, Check)
    assert check.op == op


def test_list_values_keep_bare_and_quoted_items() -> None:
    check = parse_condition("ka.verb in (get, \"list all\", 'watch', my_list)")
    assert isinstance(check, Check) and isinstance(check.value, ValueList)
    assert [(item.text, item.bare) for item in check.value.items] == [
        ("get", True),
        ("list all", False),
        ("watch", False),
        ("my_list", True),
    ]


def test_empty_list_and_bare_list_name() -> None:
    check = parse_condition("ka.verb in ()")
    assert isinstance(check, Check) and isinstance(check.value, ValueList) and check.value.items == ()
    named = parse_condition("ka.verb in my_list")
    assert isinstance(named, Check) and isinstance(named.value, ValueList)
    assert not named.value.parenthesised and named.value.items[0].text == "my_list"


def test_escapes_in_quoted_strings() -> None:
    check = parse_condition(r'ka.uri = "a\"b\\c\nd"')
    assert isinstance(check, Check) and isinstance(check.value, Item)
    assert check.value.text == 'a"b\\c\nd'


def test_word_operators_need_a_blank_after_them() -> None:
    with pytest.raises(ParseError) as caught:
        parse_condition('ka.uri contains"x"')
    assert "expected a valid check operator" in caught.value.message


@pytest.mark.parametrize(
    ("text", "line", "column", "expected"),
    [
        ("ka.verb = get and (ka.verb = list", 1, 34, "expected a ')' token"),
        ("ka.verb ~ get", 1, 9, "expected a valid check operator"),
        ("ka.verb in 'get'", 1, 12, "expected a list or an identifier"),
        ("ka.verb = get or", 1, 17, "expected blank or '(' after 'or'"),
        ("ka.verb = get or ", 1, 18, "expected a '(' token, a field check, or an identifier"),
        ("ka.verb = get\n  and ka.uri =", 2, 15, "expected a string value"),
        ("ka.verb = get ka.uri = x", 1, 15, "expecting 'or', 'and'"),
        ("ka.response.code > abc", 1, 20, "expected a number value"),
        ("ka.uri = 'open", 1, 10, "unterminated"),
        ("jevt.value[/a", 1, 14, "expected a ']' token"),
        ("", 1, 1, "condition is empty"),
    ],
)
def test_syntax_errors_name_line_column_and_what_was_expected(text: str, line: int, column: int, expected: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_condition(text)
    assert expected in caught.value.message
    assert (caught.value.pos.line, caught.value.pos.column) == (line, column)


def test_positions_of_nodes() -> None:
    expr = parse_condition("a and\n  ka.verb = get")
    assert isinstance(expr, And)
    check = expr.children[1]
    assert isinstance(check, Check)
    assert (check.pos.line, check.pos.column) == (2, 3)
