"""A Sigma rule compiled for in-process matching, and what its alerts carry (priority, tags, MITRE IDs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Value
from kubetrail.detect.priority import Priority
from kubetrail.detect.sigma.fields import FieldResolver, Getter, audit_field
from kubetrail.detect.sigma.matchers import as_text

LEVEL_PRIORITY: dict[str, Priority] = {
    "informational": Priority.INFORMATIONAL,
    "low": Priority.NOTICE,
    "medium": Priority.WARNING,
    "high": Priority.ERROR,
    "critical": Priority.CRITICAL,
}
"""Sigma's five levels onto Falco's priorities; a rule without a level alerts at WARNING (Sigma's `medium`)."""

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.IGNORECASE)


def level_priority(level: str | None) -> Priority:
    """The Falco priority for a Sigma level name (`medium` → WARNING)."""
    return LEVEL_PRIORITY.get((level or "medium").lower(), Priority.WARNING)


def mitre_ids(tags: Iterable[str]) -> tuple[str, ...]:
    """ATT&CK technique IDs from Sigma tags: `attack.t1552.007` → `T1552.007`; tactics and other tags are not IDs."""
    found: list[str] = []
    for tag in tags:
        namespace, _, name = tag.partition(".")
        if namespace.lower() == "attack" and _TECHNIQUE.match(name):
            technique = name.upper()
            if technique not in found:
                found.append(technique)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class SigmaMatch:
    """One compiled Sigma detection rule."""

    title: str
    id: str
    name: str
    source: str
    description: str
    priority: Priority
    tags: tuple[str, ...]
    mitre: tuple[str, ...]
    predicate: Callable[[EventContext], bool]
    verbs: frozenset[str] | None
    """The verbs an event must have to match (an index for the engine), None when any verb may match."""
    fields: tuple[tuple[str, Getter], ...]
    alerts: bool
    """False when a correlation refers to the rule and does not ask for its own alerts (`generate: false`)."""
    resolve: FieldResolver = audit_field
    """How the rule's logsource names fields (correlations over the rule read their group-by fields with it)."""

    @property
    def label(self) -> str:
        """How errors and notices name the rule: its title and id."""
        return f"{self.title} ({self.id})" if self.id else self.title

    def field_values(self, ctx: EventContext) -> dict[str, Value]:
        """The values of the rule's `fields:` list in one event, as alert output fields."""
        values: dict[str, Value] = {}
        for name, getter in self.fields:
            texts = [text for text in map(as_text, getter(ctx)) if text is not None]
            values[name] = None if not texts else texts[0] if len(texts) == 1 else texts
        return values
