"""Properties of generated filters: they translate, run, and `not`, `and`, `or` behave as set operations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetrail.query.source import Source, open_files
from tests.query.events import write_ndjson
from tests.query.test_translate import DOCUMENTS

ALL = {document["auditID"] for document in DOCUMENTS}
TERMS = st.sampled_from(
    [
        "resource=secrets",
        "resource=pods",
        "ns=prod",
        'ns=""',
        "ns!=prod",
        "name~web-*",
        "code>=400",
        "code=2xx",
        "code<300",
        "verb in (create,get)",
        "verb not in (create)",
        "group=system:unauthenticated",
        "ip=10.0.0.0/8",
        "ip=2001:db8::/32",
        "sa~kube-system/*",
        "event./requestObject/spec/hostNetwork=true",
        "since=2026-03-19T11:00:00Z",
        "user!~*example.com",
        "decision=forbid",
    ]
)


def filters() -> st.SearchStrategy[str]:
    return st.recursive(
        TERMS,
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"{a} {b}", inner, inner),
            st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
            st.builds(lambda a: f"not ({a})", inner),
        ),
        max_leaves=5,
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    path = write_ndjson(tmp_path_factory.mktemp("props") / "audit.log", DOCUMENTS)
    with open_files([path]) as opened:
        yield opened


def _ids(source: Source, text: str) -> set[str]:
    return set(source.select(text, columns=["audit_id"]).column("audit_id").to_pylist())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters(), filters())
def test_boolean_structure_is_set_algebra(source: Source, left: str, right: str) -> None:
    a, b = _ids(source, left), _ids(source, right)
    assert _ids(source, f"not ({left})") == ALL - a
    assert _ids(source, f"({left}) ({right})") == a & b
    assert _ids(source, f"({left}) or ({right})") == a | b
