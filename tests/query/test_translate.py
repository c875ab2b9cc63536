"""The filter language's meaning, checked by running translated filters on a real store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubetrail.query import QueryError, parse_filter, run_query, to_sql
from kubetrail.store import Store
from tests.query.events import event, fill_store

DOCUMENTS = [
    event("a", verb="get", resource="secrets", namespace="prod", name="db-password", code=200),
    event("b", verb="list", resource="secrets", namespace="dev", code=403, decision="forbid", user="bob"),
    event("c", verb="create", resource="pods", namespace="prod", name="web-1", code=201, ips=("192.168.1.9",)),
    event(
        "d",
        verb="create",
        resource="clusterrolebindings",
        namespace=None,
        name="admin-binding",
        api_group="rbac.authorization.k8s.io",
        user="system:serviceaccount:kube-system:default",
        groups=("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
        ips=("2001:db8::17",),
        code=201,
    ),
    event("e", verb="get", resource="nodes", namespace=None, code=None, stage="ResponseStarted", level="Request"),
    event(
        "f",
        verb="create",
        resource="pods",
        subresource="exec",
        namespace="prod",
        name="web-2",
        code=101,
        time="2026-03-19T12:00:00.000000Z",
        extra={"requestObject": {"spec": {"hostNetwork": True, "replicas": 3}}},
        user="system:anonymous",
        groups=("system:unauthenticated",),
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fill_store(tmp_path_factory.mktemp("store"), DOCUMENTS)


def ids(store: Path, text: str, now: datetime | None = None) -> set[str]:
    with Store.open(store, read_only=True) as opened:
        conn = opened.query_connection()
        table = run_query(conn, text, limit=0, columns=["audit_id"], now=now)
    return set(table.column("audit_id").to_pylist())


CASES = [
    ("", "abcdef"),
    ("resource=secrets", "ab"),
    ("resource=secrets verb=get", "a"),
    ("resource=secrets and verb=get", "a"),
    ("resource=secrets or code=101", "abf"),
    ("verb in (create,update,patch,delete)", "cdf"),
    ("verb not in (create,get)", "b"),
    ("ns=prod", "acf"),
    # cluster-scoped events have no namespace: != keeps them, = never matches them
    ("ns!=prod", "bde"),
    ('ns=""', "de"),
    ("not ns=prod", "bde"),
    ("name~web-*", "cf"),
    ("name!~web-*", "abde"),
    ("code>=400", "b"),
    ("code=2xx", "acd"),
    ("code<300", "acdf"),
    ("code!=200", "bcdef"),
    ("user=bob", "b"),
    ("sa=kube-system/default", "d"),
    ("sa~kube-system/*", "d"),
    ("group=system:unauthenticated", "f"),
    ("group~system:serviceaccounts:*", "d"),
    ("group in (system:unauthenticated,system:serviceaccounts)", "df"),
    ("ip=192.168.0.0/16", "c"),
    ("ip=10.0.0.7", "abef"),
    ("ip=10.0.0.0/30", ""),
    ("ip=10.0.0.4/30", "abef"),
    ("ip=2001:db8::/32", "d"),
    ("ip=2001:db9::/32", ""),
    ("ip!=10.0.0.0/8", "cd"),
    ("decision=forbid", "b"),
    ("apigroup=rbac.authorization.k8s.io", "d"),
    ("subresource=exec", "f"),
    ("stage=ResponseStarted", "e"),
    ("level=Request", "e"),
    ("cluster=default", "abcdef"),
    ("ua~kubectl/*", "abcdef"),
    ("event./requestObject/spec/hostNetwork=true", "f"),
    ("event./requestObject/spec/replicas>2", "f"),
    ("event./requestObject/spec/replicas>3", ""),
    ("since=2026-03-19T11:00:00Z", "f"),
    ("until=2026-03-19T11:00:00Z", "abcde"),
    ("time>=2026-03-19T12:00:00Z", "f"),
    ("(resource=secrets or resource=pods) code<300", "acf"),
    ("not (resource=secrets or resource=pods)", "de"),
    ("RESOURCE=secrets VERB=get", "a"),
    ("namespace=prod resource=pods", "cf"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_filter_selects(store: Path, text: str, expected: str) -> None:
    assert ids(store, text) == set(expected)


def test_since_counts_back_from_now(store: Path) -> None:
    now = datetime(2026, 3, 19, 12, 30, tzinfo=UTC)
    assert ids(store, "since=1h", now=now) == {"f"}
    assert ids(store, "since=3h", now=now) == set("abcdef")
    assert ids(store, "until=1h", now=now) == set("abcde")


def test_values_are_parameters_never_sql() -> None:
    clause, params = to_sql(parse_filter('user="x\' OR 1=1 --" ns=prod'))
    assert "OR 1=1" not in clause
    assert params == ["x' OR 1=1 --", "prod"]


def test_quoted_sql_injection_matches_nothing(store: Path) -> None:
    assert ids(store, 'user="x\' OR 1=1 --"') == set()


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("usr=jane", 1),
        ("verb=get code=abc", 15),
        ("ip=300.1.1.1", 4),
        ("since=yesterday", 7),
        ("since>1h", 1),
        ("group>a", 1),
        ("sa=default", 4),
        ("code~4*", 1),
        ("time>=noon", 7),
        ("event.requestObject=x", 1),
    ],
)
def test_value_errors_point_at_the_token(text: str, column: int) -> None:
    with pytest.raises(QueryError) as raised:
        parse_filter(text)
    assert raised.value.column == column
    assert raised.value.hint
