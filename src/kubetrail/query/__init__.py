"""The filter language (`user=jane verb in (get,list) ns=prod since=1h`) → DuckDB SQL over the `events` view.

`parse_filter` and `to_sql` are pure; `run_query` runs a filter on a connection (a store's or files'); see
docs/query.md for the language. Names load on first use, so parsing a filter does not import DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubetrail.lazy import lazy_names

if TYPE_CHECKING:
    from kubetrail.query.errors import QueryError as QueryError
    from kubetrail.query.fields import FIELDS as FIELDS
    from kubetrail.query.fields import Field as Field
    from kubetrail.query.fields import FieldKind as FieldKind
    from kubetrail.query.filter import parse_filter as parse_filter
    from kubetrail.query.nodes import Filter as Filter
    from kubetrail.query.run import run_query as run_query
    from kubetrail.query.run import where as where
    from kubetrail.query.translate import to_sql as to_sql
    from kubetrail.query.values import parse_duration as parse_duration
    from kubetrail.query.values import parse_time as parse_time

_WHERE = {
    "FIELDS": "kubetrail.query.fields",
    "Field": "kubetrail.query.fields",
    "FieldKind": "kubetrail.query.fields",
    "Filter": "kubetrail.query.nodes",
    "QueryError": "kubetrail.query.errors",
    "parse_duration": "kubetrail.query.values",
    "parse_filter": "kubetrail.query.filter",
    "parse_time": "kubetrail.query.values",
    "run_query": "kubetrail.query.run",
    "to_sql": "kubetrail.query.translate",
    "where": "kubetrail.query.run",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_names(__name__, _WHERE)
