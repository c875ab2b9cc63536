"""Compare two policies on the same events: what one records that the other does not, and at which level.

Fed the event each policy would write (or None), one input event at a time; groups the differences by
(user, verb, resource) so a reviewer sees which callers a policy change starts or stops recording.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kubetrail.model.event import Event, Level
from kubetrail.policy.simulate import resource_label

CallerKey = tuple[str, str, str]


@dataclass
class PolicyDiff:
    """Events written by only one policy, and events both write at different levels."""

    only_a: Counter[CallerKey] = field(default_factory=Counter)
    only_b: Counter[CallerKey] = field(default_factory=Counter)
    level_changes: Counter[tuple[Level, Level]] = field(default_factory=Counter)
    changed_callers: Counter[tuple[CallerKey, Level, Level]] = field(default_factory=Counter)
    same: int = 0

    def add(self, event: Event, written_a: Event | None, written_b: Event | None) -> None:
        """Account for one input event and what each policy wrote of it."""
        if written_a is None and written_b is None:
            return
        key = (event.user.username, event.verb, resource_label(event))
        if written_b is None:
            self.only_a[key] += 1
        elif written_a is None:
            self.only_b[key] += 1
        elif written_a.level != written_b.level:
            self.level_changes[(written_a.level, written_b.level)] += 1
            self.changed_callers[(key, written_a.level, written_b.level)] += 1
        else:
            self.same += 1

    @property
    def identical(self) -> bool:
        """True when both policies write the same events at the same levels."""
        return not (self.only_a or self.only_b or self.level_changes)
