"""One small generated stream shared by the generator's tests (generation is deterministic)."""

from __future__ import annotations

import pytest

from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import Event

SMALL = GeneratorConfig(seed=3, nodes=3, rate=20.0, duration=180.0, scenarios=SCENARIOS, scenario_repeats=2)


@pytest.fixture(scope="session")
def stream() -> list[Event]:
    """Three simulated minutes of a 3-node cluster with every scenario twice."""
    return list(generate(SMALL))
