"""What to generate: the cluster's scale, the simulated time span, the seed and the attack scenarios."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubetrail.errors import KubetrailError

SCENARIOS: tuple[str, ...] = (
    "exec-into-pod",
    "privileged-pod",
    "secret-harvesting",
    "rbac-escalation",
    "anonymous-access",
    "token-theft",
    "permission-enumeration",
)
"""Every attack scenario, in the order they are documented."""

DEFAULT_START = datetime(2026, 3, 19, 10, 0, 0, tzinfo=UTC)
"""A fixed default start so a seed alone reproduces a stream byte for byte."""


class GeneratorError(KubetrailError):
    """A generator setting that cannot produce a stream (names the setting and how to fix it)."""

    def __init__(self, message: str, *, field: str = "", hint: str = "") -> None:
        self.field = field
        self.hint = hint
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class GeneratorConfig:
    """A reproducible description of a generated stream.

    `rate` is requests per second of simulated time (each request yields two or three events);
    `duration` is how many simulated seconds of requests are generated.
    """

    seed: int = 1
    nodes: int = 3
    rate: float = 25.0
    duration: float = 600.0
    start: datetime = DEFAULT_START
    scenarios: tuple[str, ...] = field(default_factory=tuple)
    scenario_repeats: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= 5000:
            raise GeneratorError(f"{self.nodes} nodes is out of range", field="nodes", hint="use 1 to 5000 nodes")
        if not 0 < self.rate <= 1_000_000:
            raise GeneratorError(f"rate {self.rate} is out of range", field="rate", hint="use a rate above 0 req/s")
        if not 0 < self.duration <= 366 * 86400:
            raise GeneratorError(
                f"duration {self.duration} is out of range", field="duration", hint="use 1 s up to a year"
            )
        if self.scenario_repeats < 1:
            raise GeneratorError("must be at least 1", field="scenario_repeats")
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))
        object.__setattr__(self, "scenarios", resolve_scenarios(self.scenarios))


def resolve_scenarios(names: Iterable[str]) -> tuple[str, ...]:
    """Expand `all`, drop duplicates and refuse unknown names (the error lists the known ones)."""
    chosen: list[str] = []
    for name in names:
        wanted = SCENARIOS if name == "all" else (name,)
        for item in wanted:
            if item not in SCENARIOS:
                raise GeneratorError(
                    f"unknown scenario {item!r}",
                    field="scenario",
                    hint=f"choose from: all, {', '.join(SCENARIOS)}",
                )
            if item not in chosen:
                chosen.append(item)
    return tuple(sorted(chosen, key=SCENARIOS.index))
