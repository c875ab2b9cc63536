"""A deterministic generator of a small cluster's audit stream, with optional attack scenarios.

`generate(GeneratorConfig(seed=1))` yields fully detailed `audit.k8s.io/v1` events (level
RequestResponse, every stage the apiserver emits) in timestamp order; apply a policy with
`kubetrail.policy.record` to get what a real apiserver would have written.
"""

from kubetrail.emit.generator.config import DEFAULT_START, SCENARIOS, GeneratorConfig, GeneratorError, resolve_scenarios
from kubetrail.emit.generator.stream import generate, scenario_times

__all__ = [
    "DEFAULT_START",
    "SCENARIOS",
    "GeneratorConfig",
    "GeneratorError",
    "generate",
    "resolve_scenarios",
    "scenario_times",
]
