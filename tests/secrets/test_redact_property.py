"""Redaction replaces exactly the secret characters, whatever escapes the JSON writer used around them."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrail.secrets import REDACTED_PREFIX, hash_prefix, redact_text, scan_text
from kubetrail.secrets.patterns import is_placeholder

_keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_keys, _values, min_size=1, max_size=4), st.booleans(), st.text(max_size=12))
def test_secret_values_become_markers_and_nothing_else_changes(
    data: dict[str, str], ascii_only: bool, note: str
) -> None:
    event = {
        "kind": "Event",
        "auditID": "id-1",
        "requestURI": "/api/v1/namespaces/a/secrets",
        "verb": "create",
        "objectRef": {"resource": "secrets", "namespace": "a"},
        "requestObject": {"kind": "Secret", "metadata": {"name": "s", "labels": {"note": note}}, "data": data},
    }
    text = json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":"))
    findings, replacements = scan_text(text, "t")
    secret_keys = {key for key, value in data.items() if not is_placeholder(value)}
    assert len([item for item in findings if item.kind == "secret-data"]) == len(secret_keys)
    redacted, _ = redact_text(text, "t")
    decoded = json.loads(redacted)
    assert decoded["requestObject"]["metadata"] == event["requestObject"]["metadata"]
    for key, value in data.items():
        expected = REDACTED_PREFIX + hash_prefix(value) if key in secret_keys else value
        assert decoded["requestObject"]["data"][key] == expected
    # Outside the replaced spans the text is unchanged.
    position = 0
    rebuilt = []
    for item in sorted(replacements, key=lambda replacement: replacement.start):
        rebuilt.append(text[position : item.start])
        rebuilt.append(item.text)
        position = item.end
    rebuilt.append(text[position:])
    assert "".join(rebuilt) == redacted
    assert scan_text(redacted, "t")[0] == []
