"""Rule exceptions in all their forms, and appending to them, as Falco turns them into `and not (...)`."""

from __future__ import annotations

import pytest

from kubetrail.detect import Engine, RuleLoadError
from kubetrail.detect.collector import Entry, ExceptionInfo, Where
from kubetrail.detect.compiler import exception_condition
from tests.detect.helpers import fired, make_event, ruleset

RULE = """- rule: r
  desc: d
  condition: ka.verb = create
  output: o
  priority: WARNING
  source: k8s_audit
"""

JANE_DEFAULT = make_event()
BOB_DEFAULT = make_event(user={"username": "bob"})
JANE_OTHER = make_event(objectRef={"resource": "pods", "namespace": "other", "name": "web"})


def fires(text: str, event: object, *more: str) -> bool:
    return fired(Engine(ruleset(text, *more)), event) == ["r"]  # type: ignore[arg-type]


def with_exceptions(block: str) -> str:
    return RULE + "  exceptions:\n" + block


def test_fields_comps_and_values_tuples() -> None:
    text = with_exceptions(
        "  - name: known\n    fields: [ka.user.name, ka.target.namespace]\n    comps: [=, in]\n"
        "    values:\n      - [jane, [default, kube-system]]\n"
    )
    assert not fires(text, JANE_DEFAULT)
    assert fires(text, JANE_OTHER)
    assert fires(text, BOB_DEFAULT)


def test_comps_default_to_equality() -> None:
    text = with_exceptions(
        "  - name: known\n    fields: [ka.user.name, ka.target.namespace]\n"
        "    values:\n      - [jane, default]\n      - [bob, other]\n"
    )
    assert not fires(text, JANE_DEFAULT)
    assert fires(text, JANE_OTHER)
    assert fires(text, BOB_DEFAULT)


def test_a_single_field_takes_a_list_of_values_compared_with_in() -> None:
    text = with_exceptions("  - name: users\n    fields: ka.user.name\n    values: [jane, 'system:admin']\n")
    assert not fires(text, JANE_DEFAULT)
    assert fires(text, BOB_DEFAULT)


@pytest.mark.parametrize(
    ("field", "comps", "values", "suppressed"),
    [
        ("ka.uri", "pmatch", "[/api/v1/namespaces]", True),
        ("ka.uri", "pmatch", "[/apis]", False),
        ("ka.user.groups", "intersects", "[dev]", True),
        ("ka.user.groups", "intersects", "[ops]", False),
    ],
)
def test_a_single_field_with_pmatch_or_intersects(field: str, comps: str, values: str, suppressed: bool) -> None:
    text = with_exceptions(f"  - name: e\n    fields: {field}\n    comps: {comps}\n    values: {values}\n")
    assert fires(text, JANE_DEFAULT) is not suppressed


def test_values_may_name_lists() -> None:
    lists = "- list: trusted\n  items: [jane, bob]\n"
    text = with_exceptions("  - name: e\n    fields: [ka.user.name]\n    comps: [in]\n    values:\n      - [trusted]\n")
    assert not fires(lists + text, JANE_DEFAULT)
    assert not fires(lists + text, BOB_DEFAULT)


def test_an_exception_without_values_suppresses_nothing() -> None:
    text = with_exceptions("  - name: e\n    fields: [ka.user.name]\n")
    assert fires(text, JANE_DEFAULT)


def test_appending_values_to_an_exception_and_adding_one() -> None:
    base = with_exceptions("  - name: users\n    fields: [ka.user.name]\n    values:\n      - [bob]\n")
    assert fires(base, JANE_DEFAULT)
    more = (
        "- rule: r\n  exceptions:\n  - name: users\n    values:\n      - [jane]\n  override:\n    exceptions: append\n"
    )
    assert not fires(base, JANE_DEFAULT, more)
    legacy = "- rule: r\n  exceptions:\n  - name: users\n    values:\n      - [jane]\n  append: true\n"
    assert not fires(base, JANE_DEFAULT, legacy)
    added = (
        "- rule: r\n  exceptions:\n  - name: namespaces\n    fields: [ka.target.namespace]\n    values:\n"
        "      - [other]\n  override:\n    exceptions: append\n"
    )
    assert not fires(base, JANE_OTHER, added)
    assert fires(base, JANE_DEFAULT, added)


def test_replacing_exceptions() -> None:
    base = with_exceptions("  - name: users\n    fields: [ka.user.name]\n    values:\n      - [jane]\n")
    replaced = (
        "- rule: r\n  exceptions:\n  - name: other\n    fields: [ka.user.name]\n    values:\n      - [bob]\n"
        "  override:\n    exceptions: replace\n"
    )
    assert not fires(base, JANE_DEFAULT)
    assert fires(base, JANE_DEFAULT, replaced)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "  - name: e\n    fields: [ka.user.name, ka.verb]\n    comps: [=]\n",
            "Fields and comps lists must have equal length",
        ),
        ("  - name: e\n    fields: ka.user.name\n    comps: '='\n", "comps must be one of (in, pmatch, intersects)"),
        (
            "  - name: e\n    fields: [ka.user.name]\n    comps: [like]\n",
            "'like' is not a supported comparison operator",
        ),
        ("  - name: e\n    fields: [ka.nope]\n", "'ka.nope' is not a supported filter field"),
        ("  - name: e\n    values: [[a]]\n", "Item has no mapping for key 'fields'"),
        (
            "  - name: e\n    fields: [ka.user.name]\n  - name: e\n    fields: [ka.verb]\n",
            "Exceptions names in the same object must be unique",
        ),
        (
            "  - name: e\n    fields: [ka.user.name, ka.verb]\n    values:\n      - [jane]\n",
            "Fields and values lists must have equal length",
        ),
    ],
)
def test_invalid_exceptions_are_refused(block: str, message: str) -> None:
    with pytest.raises(RuleLoadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ruleset(with_exceptions(block))


def test_the_condition_written_for_exceptions_matches_falcos_form() -> None:
    where = Where("x")
    tuples = ExceptionInfo(
        "a",
        where,
        fields=Entry(items=[Entry("ka.user.name"), Entry("ka.target.namespace")]),
        comps=Entry(items=[Entry("="), Entry("in")]),
        values=[Entry(items=[Entry("jane doe"), Entry(items=[Entry("default"), Entry("kube-system")])])],
    )
    single = ExceptionInfo("b", where, fields=Entry("ka.verb"), comps=Entry("in"), values=[Entry("get"), Entry("list")])
    text = exception_condition("ka.verb = create", [tuples, single], where)
    assert text == (
        '(ka.verb = create) and not ((ka.user.name = "jane doe" and ka.target.namespace in (default, kube-system)))'
        " and not (ka.verb in (get, list))"
    )
