"""The --since / --until / --cluster flags of queries and investigations, as filter terms."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.query.errors import QueryError
from kubetrail.query.filter import parse_filter


@dataclass(frozen=True)
class Window:
    """The --since / --until / --cluster flags, as filter terms (`since=1h`, `until=2026-03-19T12:00Z`)."""

    since: str | None = None
    until: str | None = None
    cluster: str | None = None

    def terms(self) -> list[str]:
        terms: list[str] = []
        for name, value in (("since", self.since), ("until", self.until), ("cluster", self.cluster)):
            if value:
                quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                try:
                    parse_filter(f"{name}={quoted}")
                except QueryError as error:
                    raise QueryError(f"--{name} {value}: {error.message}", hint=error.hint) from None
                terms.append(f"{name}={quoted}")
        return terms
