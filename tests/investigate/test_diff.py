"""Object diffs: leaf changes as JSON pointers, ignoring what the apiserver rewrites on every write."""

from __future__ import annotations

from kubetrail.investigate.diff import Change, diff


def test_leaf_changes_additions_and_removals() -> None:
    before = {"spec": {"replicas": 2, "paused": True}, "metadata": {"labels": {"a/b": "1"}}}
    after = {"spec": {"replicas": 3}, "metadata": {"labels": {"a/b": "2", "new": "x"}}}
    assert diff(before, after) == [
        Change("/metadata/labels/a~1b", "1", "2"),
        Change("/metadata/labels/new", None, "x"),
        Change("/spec/paused", True, None),
        Change("/spec/replicas", 2, 3),
    ]


def test_server_managed_fields_are_ignored() -> None:
    before = {"metadata": {"resourceVersion": "1", "managedFields": [1], "generation": 1}, "status": {"ready": 1}}
    after = {"metadata": {"resourceVersion": "2", "managedFields": [2], "generation": 2}, "status": {"ready": 2}}
    assert diff(before, after) == []


def test_lists_compare_whole() -> None:
    assert diff({"args": ["a", "b"]}, {"args": ["a", "c"]}) == [Change("/args", ["a", "b"], ["a", "c"])]
