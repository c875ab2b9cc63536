"""The search box speaks `kubetrail query`'s language; its errors point at the offending token (0-based)."""

from __future__ import annotations

import pytest

from kubetrail.ui.search import SearchError, filter_sql


def test_empty_text_matches_everything() -> None:
    assert filter_sql("  ") == ("true", [])


def test_a_filter_becomes_a_parameterised_clause() -> None:
    clause, params = filter_sql("user=jane@example.com code>=400")
    assert "jane@example.com" not in clause
    assert "jane@example.com" in params and 400 in params


@pytest.mark.parametrize("text", ["verb=get nosuchfield=1", "user=jane code>=abc"])
def test_errors_point_at_the_offending_token(text: str) -> None:
    with pytest.raises(SearchError) as caught:
        filter_sql(text)
    token = text.split()[1]
    assert text.index(token) <= caught.value.column < text.index(token) + len(token)
