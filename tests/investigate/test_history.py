"""`object KIND/NAMESPACE/NAME`: writes in order with diffs of the bodies recorded at Request level or above."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetrail.investigate import object_history
from kubetrail.investigate.diff import Change
from kubetrail.query import QueryError
from kubetrail.query.source import open_files
from tests.query.events import event, write_ndjson


def _deployment(replicas: int, image: str) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "prod", "resourceVersion": str(replicas)},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


def _write(
    audit_id: str, verb: str, minute: int, body: dict[str, Any] | None, *, user: str = "jane", **more: Any
) -> dict[str, Any]:
    extra = {"requestObject": body} if body is not None else {}
    return event(
        audit_id,
        verb=verb,
        resource="deployments",
        namespace="prod",
        name="web",
        api_group="apps",
        level="Request" if body is not None else "Metadata",
        user=user,
        time=f"2026-03-19T10:{minute:02d}:00.000000Z",
        extra=extra,
        **more,
    )


DOCUMENTS = [
    _write("c", "create", 0, _deployment(2, "web:1"), code=201),
    _write("g", "get", 1, None),
    _write("u", "update", 2, _deployment(3, "web:1")),
    _write("p", "patch", 3, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}),
    _write("x", "update", 4, _deployment(9, "evil:1"), user="mallory", code=403, decision="forbid"),
    _write("d", "delete", 5, None, user="bob"),
    event("other", verb="update", resource="deployments", namespace="prod", name="api", api_group="apps"),
]


def test_history_with_diffs(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        history = object_history(source, "deployments/prod/web")
    assert [(item.verb, item.user) for item in history.revisions] == [
        ("create", "jane"),
        ("update", "jane"),
        ("patch", "jane"),
        ("update", "mallory"),
        ("delete", "bob"),
    ]
    create, update, patch, denied, delete = history.revisions
    assert Change("/spec/replicas", None, 2) not in create.changes  # the whole spec is new
    assert any(change.path == "/spec" for change in create.changes)
    assert update.changes == [Change("/spec/replicas", 2, 3)]
    assert patch.patch == {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}
    assert denied.changes == []  # a denied write changed nothing
    assert delete.changes == [Change("/", "(object)", None)]
    assert "created by jane" in history.report.headline
    assert any(line.startswith("deleted by bob") for line in history.report.headline)
    assert "get" not in history.report.events.column("verb").to_pylist()


def test_singular_kind_and_reads(tmp_path: Path) -> None:
    with open_files([write_ndjson(tmp_path / "audit.log", DOCUMENTS)]) as source:
        history = object_history(source, "deployment/prod/web", reads=True)
    assert "get" in history.report.events.column("verb").to_pylist()


def test_metadata_only_history_says_there_are_no_diffs(tmp_path: Path) -> None:
    documents = [_write("a", "update", 1, None), _write("b", "update", 2, None)]
    with open_files([write_ndjson(tmp_path / "audit.log", documents)]) as source:
        history = object_history(source, "deployments/prod/web")
    assert any("no bodies recorded" in line for line in history.report.headline)


def test_bad_reference() -> None:
    with pytest.raises(QueryError):
        object_history(None, "web")  # type: ignore[arg-type]
