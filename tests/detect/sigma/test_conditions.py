"""Sigma conditions: and / or / not, parentheses, `1 of`, `all of`, `them`, lists of maps, several conditions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.detect.sigma.helpers import matches

_SELECTIONS = """    selection_verb:
        verb: create
    selection_pods:
        objectRef.resource: pods
    selection_secrets:
        objectRef.resource: secrets
    filter_admin:
        user.username: admin
"""

CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("selection_verb and selection_pods", {}, True),
    ("selection_verb and selection_secrets", {}, False),
    ("selection_secrets or selection_pods", {}, True),
    ("selection_verb and not filter_admin", {}, True),
    ("selection_verb and not filter_admin", {"user": {"username": "admin"}}, False),
    ("not (selection_secrets or filter_admin)", {}, True),
    ("1 of selection_*", {"verb": "get"}, True),
    ("all of selection_*", {}, False),  # pods and secrets cannot both hold
    ("all of selection_v* and all of selection_p*", {}, True),
    ("1 of them", {"verb": "get", "objectRef": {"resource": "nodes"}}, False),
    ("all of them", {}, False),
    ("1 of filter_* or selection_secrets", {"user": {"username": "admin"}}, True),
]


@pytest.mark.parametrize(("condition", "event", "expected"), CASES)
def test_condition(condition: str, event: dict[str, Any], expected: bool) -> None:
    assert matches(f"{_SELECTIONS}    condition: {condition}\n", **event) is expected


def test_keys_of_one_map_are_and_ed_and_a_list_of_maps_is_or_ed() -> None:
    one_map = "    s:\n        verb: create\n        objectRef.resource: secrets\n    condition: s\n"
    assert matches(one_map) is False
    maps = "    s:\n        - verb: delete\n        - objectRef.resource: pods\n    condition: s\n"
    assert matches(maps) is True
    assert matches(maps, objectRef={"resource": "nodes"}) is False


def test_a_list_of_conditions_matches_when_any_does() -> None:
    detection = _SELECTIONS + "    condition:\n        - selection_secrets\n        - filter_admin\n"
    assert matches(detection) is False
    assert matches(detection, user={"username": "admin"}) is True
