"""The structural splitter agrees with a JSON parser on every document it is given, however deep."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.intake.split import split_document

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(values, max_size=6), spaced=st.booleans())
def test_an_array_splits_into_its_items(items: list[object], spaced: bool) -> None:
    data = json.dumps(items, indent=1 if spaced else None).encode()
    split = split_document(data)
    assert split is not None and split.is_array
    assert [json.loads(raw) for raw in split.items] == items


@settings(max_examples=300, deadline=None)
@given(items=st.lists(values, max_size=6), extra=st.dictionaries(st.text(max_size=6), values, max_size=3))
def test_an_event_list_splits_into_kind_version_and_items(items: list[object], extra: dict[str, object]) -> None:
    document = {**extra, "kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    split = split_document(json.dumps(document).encode())
    assert split is not None and not split.is_array
    assert (split.kind, split.api_version) == ("EventList", "audit.k8s.io/v1")
    assert [json.loads(raw) for raw in split.items] == items


def test_a_bomb_is_split_in_few_steps() -> None:
    deep = b"[" * 1_000_000 + b"]" * 1_000_000
    split = split_document(b"[1," + deep + b',"x"]')
    assert split is not None
    assert split.items[0] == b"1" and split.items[2] == b'"x"' and len(split.items[1]) == len(deep)


def test_not_json_is_none() -> None:
    assert split_document(b"[1, 2") is None
    assert split_document(b"hello") is None
    assert split_document(b"]]") is None
