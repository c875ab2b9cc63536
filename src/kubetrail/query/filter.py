"""`parse_filter`: parse and check a filter, so every mistake is reported before any data is read."""

from __future__ import annotations

from kubetrail.query.nodes import Filter
from kubetrail.query.parser import parse
from kubetrail.query.translate import to_sql


def parse_filter(text: str) -> Filter:
    """A checked filter; raises QueryError (with the offending token's column) on any mistake."""
    parsed = parse(text)
    to_sql(parsed)
    return parsed
