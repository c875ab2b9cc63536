"""`jevt.value[/sourceIPs/N]` read from the decoded event gives what the JSON pointer gives on the document."""

from __future__ import annotations

import pytest

from kubetrail.detect.fields import accessor_for
from tests.detect.helpers import REMOVE, context, make_event, matches

ADDRESSES: list[object] = [["203.0.113.9", "10.0.0.1"], ["10.1.2.3"], [], REMOVE]


@pytest.mark.parametrize("addresses", ADDRESSES)
@pytest.mark.parametrize("pointer", ["/sourceIPs/0", "/sourceIPs/1", "/sourceIPs/2"])
def test_an_address_by_index_is_the_array_element_or_missing(addresses: object, pointer: str) -> None:
    ctx = context(sourceIPs=addresses)
    index = int(pointer.rsplit("/", 1)[1])
    listed = addresses if isinstance(addresses, list) else []
    expected = listed[index] if index < len(listed) else None  # RFC 6901: past the end is absent
    for prefix in ("jevt", "json"):
        assert accessor_for(f"{prefix}.value", pointer)(ctx) == expected


@pytest.mark.parametrize("addresses", ADDRESSES)
def test_conditions_on_the_first_address_agree_with_the_reference_closures(addresses: object) -> None:
    event = make_event(sourceIPs=addresses)
    first = addresses[0] if isinstance(addresses, list) and addresses else None
    # `matches` also checks the generated predicate against the reference closures
    assert matches('jevt.value[/sourceIPs/0] startswith "10."', event) == (
        first is not None and first.startswith("10.")
    )
    assert matches("jevt.value[/sourceIPs/0] exists", event) == (first is not None)
    # Falco: every comparison on a missing field is false, `!=` included
    assert matches("json.value[/sourceIPs/0] != 203.0.113.9", event) == (first is not None and first != "203.0.113.9")
