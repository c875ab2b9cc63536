"""String spans and escape offsets agree with a real JSON decoder on arbitrary documents."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.secrets.jsontext import Path, format_path, raw_offsets, string_spans

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def _strings(value: Any, path: Path = ()) -> dict[Path, str]:
    found: dict[Path, str] = {}
    if isinstance(value, str):
        found[path] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            found.update(_strings(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_strings(item, (*path, index)))
    return found


@settings(max_examples=150, deadline=None)
@given(_values, st.booleans(), st.booleans())
def test_spans_find_every_string_value(value: Any, ascii_only: bool, spaced: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if spaced else None)
    spans = {path: text[start:end] for path, start, end in string_spans(text)}
    expected = _strings(value)
    assert {path: json.loads(f'"{raw}"') for path, raw in spans.items()} == expected


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=20), st.booleans())
def test_raw_offsets_map_decoded_characters(value: str, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
    offsets = raw_offsets(raw)
    assert len(offsets) == len(value) + 1
    for index, character in enumerate(value):
        assert json.loads(f'"{raw[offsets[index] : offsets[index + 1]]}"') == character


def test_format_path() -> None:
    assert format_path(("responseObject", "items", 3, "data", "tls.key")) == 'responseObject.items[3].data["tls.key"]'
