"""Every scalar the RBAC writer emits reads back as the same string."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.rbac.yamltext import scalar, string_list

TRICKY = [
    "",
    "*",
    "yes",
    "No",
    "on",
    "null",
    "~",
    "1.5",
    "0x1f",
    "12:30",
    "1e3",
    "-",
    "- a",
    "a: b",
    "#x",
    "@x",
    "/api",
    "system:admin",
]


def test_tricky_values_round_trip() -> None:
    for text in TRICKY:
        assert yaml.safe_load(f"key: {scalar(text)}")["key"] == text, text


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))
def test_any_text_round_trips(text: str) -> None:
    assert yaml.safe_load(f"key: {scalar(text)}")["key"] == text


def test_lists() -> None:
    lines = string_list("verbs", ["get", "*"], "")
    assert yaml.safe_load("\n".join(lines)) == {"verbs": ["get", "*"]}
