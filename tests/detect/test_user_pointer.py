"""`jevt.value[/user/…]` and `[/impersonatedUser/…]` read from the typed event give what the JSON pointer gives
on the whole event document, which is read independently here with the standard json module."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetrail.detect.fields import accessor_for
from tests.detect.helpers import REMOVE, context, event_dict

USERS: list[dict[str, Any]] = [
    {"user": {"username": "jane", "uid": "u-1", "groups": ["dev", "system:authenticated"]}},
    {"user": {"username": "jane"}},  # no groups at all
    {"user": {"username": "jane", "groups": []}},
    {"impersonatedUser": {"username": "admin", "groups": ["system:masters"]}},
    {"impersonatedUser": {"username": "admin"}},
    {"impersonatedUser": REMOVE},
    {"user": {}},
]
POINTERS = [
    "/user/username",
    "/user/uid",
    "/user/groups",
    "/user/groups/0",
    "/user/groups/1",
    "/user/groups/7",
    "/impersonatedUser/username",
    "/impersonatedUser/groups",
    "/impersonatedUser/groups/0",
]


def _expected(document: dict[str, Any], pointer: str) -> str | None:
    value: Any = document
    for key in pointer.strip("/").split("/"):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("changes", USERS)
@pytest.mark.parametrize("pointer", POINTERS)
def test_user_pointers_equal_the_document(changes: dict[str, Any], pointer: str) -> None:
    ctx = context(**changes)
    document = json.loads(json.dumps(event_dict(**changes)))
    assert accessor_for("jevt.value", pointer)(ctx) == _expected(document, pointer)
