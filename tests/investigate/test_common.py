"""The grouped investigations on hand-written events with known answers, read in place and from a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetrail.investigate import anonymous, exec_sessions, forbidden, rbac_changes, secrets
from kubetrail.query.source import Source, Window
from tests.query.events import SOURCE_KINDS, event, open_source

RBAC = "rbac.authorization.k8s.io"
DOCUMENTS = [
    # jane reads two secrets in prod (two stages of one request for the first), lists them in dev
    event("s1", stage="ResponseStarted", verb="watch", resource="secrets", namespace="prod", code=200),
    event("s1", verb="watch", resource="secrets", namespace="prod", code=200),
    event("s2", verb="get", resource="secrets", namespace="prod", name="db", time="2026-03-19T10:05:00.000000Z"),
    event("s3", verb="list", resource="secrets", namespace="dev"),
    event("s4", verb="list", resource="secrets", namespace="kube-system", user="bob", code=403, decision="forbid"),
    event("s5", verb="create", resource="secrets", namespace="prod", name="new"),  # a write, not a read
    event("f1", verb="list", resource="pods", namespace=None, user="bob", code=403, decision="forbid"),
    event("e1", verb="create", resource="pods", subresource="exec", namespace="shop", name="web-1", code=101),
    event("e2", verb="create", resource="pods", subresource="attach", namespace="shop", name="web-1", code=101),
    event("e3", verb="create", resource="pods", subresource="portforward", namespace="shop", name="db-0", user="bob"),
    event("e4", verb="get", resource="pods", subresource="log", namespace="shop", name="web-1"),
    event("r1", verb="create", resource="clusterrolebindings", namespace=None, name="admin", api_group=RBAC, code=201),
    event("r2", verb="patch", resource="roles", namespace="shop", name="edit", api_group=RBAC),
    event("r3", verb="deletecollection", resource="rolebindings", namespace="shop", api_group=RBAC),
    event("r4", verb="get", resource="roles", namespace="shop", name="edit", api_group=RBAC),
    event(
        "a1",
        verb="list",
        resource="secrets",
        namespace="kube-system",
        user="system:anonymous",
        groups=("system:unauthenticated",),
        ips=("203.0.113.45",),
        code=403,
        user_agent="curl/8.5.0",
    ),
    event(
        "a2",
        verb="get",
        resource=None,
        user="system:anonymous",
        groups=("system:unauthenticated",),
        ips=("203.0.113.45",),
        user_agent="curl/8.5.0",
    ),
]


@pytest.fixture(params=SOURCE_KINDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Source]:
    with open_source(request.param, tmp_path, DOCUMENTS) as opened:
        yield opened


def test_secrets_groups_reads_by_user_and_namespace(source: Source) -> None:
    report = secrets(source)
    rows = {(row["user"], row["namespace"]): row for row in report.summary.to_pylist()}
    assert set(rows) == {
        ("jane@example.com", "prod"),
        ("jane@example.com", "dev"),
        ("bob", "kube-system"),
        ("system:anonymous", "kube-system"),
    }
    assert rows[("jane@example.com", "prod")]["requests"] == 2
    assert rows[("jane@example.com", "prod")]["verbs"] == ["get", "watch"]
    assert rows[("bob", "kube-system")]["denied_or_failed"] == 1
    assert set(report.events.column("audit_id").to_pylist()) == {"s1", "s2", "s3", "s4", "a1"}
    assert report.requests == 5
    assert report.headline[0].startswith("5 request(s) (6 events) by 3 user(s); 2 denied")


def test_secrets_within_a_window(source: Source) -> None:
    report = secrets(source, Window(since="2026-03-19T10:01:00Z"))
    assert set(report.events.column("audit_id").to_pylist()) == {"s2"}


def test_forbidden(source: Source) -> None:
    report = forbidden(source)
    keys = {(row["user"], row["verb"], row["resource"]) for row in report.summary.to_pylist()}
    assert keys == {("bob", "list", "secrets"), ("bob", "list", "pods"), ("system:anonymous", "list", "secrets")}


def test_exec_attach_and_portforward_but_not_logs(source: Source) -> None:
    report = exec_sessions(source)
    assert set(report.events.column("audit_id").to_pylist()) == {"e1", "e2", "e3"}
    web = next(row for row in report.summary.to_pylist() if row["name"] == "web-1")
    assert web["kinds"] == ["attach", "exec"] and web["requests"] == 2
    only_exec = exec_sessions(source, subresources=("exec",))
    assert set(only_exec.events.column("audit_id").to_pylist()) == {"e1"}


def test_rbac_changes_are_writes_to_the_rbac_group(source: Source) -> None:
    report = rbac_changes(source)
    assert set(report.events.column("audit_id").to_pylist()) == {"r1", "r2", "r3"}
    objects = {row["resource"]: row["objects"] for row in report.summary.to_pylist()}
    assert objects["clusterrolebindings"] == ["admin"]
    assert objects["roles"] == ["shop/edit"]


def test_anonymous_by_source_address(source: Source) -> None:
    report = anonymous(source)
    (row,) = report.summary.to_pylist()
    assert (row["source_ip"], row["user_agent"], row["requests"], row["allowed"]) == (
        "203.0.113.45",
        "curl/8.5.0",
        2,
        1,
    )
