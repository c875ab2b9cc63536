"""Generator throughput: fully detailed events per second on one core, and with the sample policy applied.

Target: ≥ 50k events/s generated (every stage, RequestResponse bodies) on one core. The generator is
single-threaded, so the rate is measured on the process's CPU time (robust when other work shares the
machine); wall-clock rates are in the details. Run alone with `python -m bench.bench_generate`;
`KUBETRAIL_BENCH_SCALE` shrinks the simulated span.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bench.common import BenchResult
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import encode_ndjson
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.simulate import simulate

NAME = "generate"
TARGET_EVENTS_PER_S = 50_000.0


def _config() -> GeneratorConfig:
    scale = float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))
    return GeneratorConfig(seed=11, nodes=5, rate=100.0, duration=max(60.0, 600.0 * scale), scenarios=SCENARIOS)


def _measure(function: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best CPU seconds and best wall seconds over `repeat` runs, and the last result."""
    best_cpu = best_wall = float("inf")
    result: Any = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_cpu, best_wall, result


def run() -> list[BenchResult]:
    """Events/s of `generate`, of generate + NDJSON encoding, and of generate + policy simulation."""
    config = _config()
    cpu, wall, events = _measure(lambda: sum(1 for _ in generate(config)), repeat=3)
    detail = {
        "events": events,
        "nodes": config.nodes,
        "rate": config.rate,
        "duration_s": config.duration,
        "wall_events_per_s": round(events / wall),
    }
    results = [
        BenchResult(
            NAME,
            "generate events/s, one core (every stage, full bodies)",
            events / cpu,
            "events/s",
            TARGET_EVENTS_PER_S,
            detail=detail,
        )
    ]
    cpu, wall, size = _measure(lambda: len(encode_ndjson(generate(config))), repeat=1)
    results.append(
        BenchResult(
            NAME,
            "generate + encode NDJSON, one core",
            events / cpu,
            "events/s",
            detail={"average_event_bytes": round(size / max(events, 1)), "wall_events_per_s": round(events / wall)},
        )
    )
    policy = compile_policy(load_preset().policy)
    cpu, wall, report = _measure(lambda: simulate(policy, generate(config)), repeat=1)
    results.append(
        BenchResult(
            NAME,
            "generate + simulate sample policy, one core",
            events / cpu,
            "events/s",
            detail={
                "recorded_events": report.events,
                "recorded_average_bytes": round(report.bytes / max(report.events, 1)),
                "wall_events_per_s": round(events / wall),
            },
        )
    )
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.0f} {result.unit} {result.detail}")
