"""The filter language (`user=jane verb in (get,list) ns=prod since=1h`) → DuckDB SQL over the `events` view.

`parse_filter` and `to_sql` are pure; `run_query` runs a filter on a connection (a store's or files'); see
docs/query.md for the language.
"""

from kubetrail.query.errors import QueryError
from kubetrail.query.fields import FIELDS, Field, FieldKind
from kubetrail.query.filter import parse_filter
from kubetrail.query.nodes import Filter
from kubetrail.query.run import run_query, where
from kubetrail.query.translate import to_sql
from kubetrail.query.values import parse_duration, parse_time

__all__ = [
    "FIELDS",
    "Field",
    "FieldKind",
    "Filter",
    "QueryError",
    "parse_duration",
    "parse_filter",
    "parse_time",
    "run_query",
    "to_sql",
    "where",
]
