"""Generator throughput: fully detailed events per second on one core, and with the sample policy applied.

Target: ≥ 50k events/s generated (every stage, RequestResponse bodies). Run alone with
`python -m bench.bench_generate`; `KUBETRAIL_BENCH_SCALE` shrinks the simulated span.
"""

from __future__ import annotations

import os

from bench.common import BenchResult, timed
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import encode_ndjson
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.simulate import simulate

NAME = "generate"
TARGET_EVENTS_PER_S = 50_000.0


def _config() -> GeneratorConfig:
    scale = float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))
    return GeneratorConfig(seed=11, nodes=5, rate=100.0, duration=max(60.0, 1800.0 * scale), scenarios=SCENARIOS)


def run() -> list[BenchResult]:
    """Events/s of `generate`, of generate + NDJSON encoding, and of generate + policy simulation."""
    config = _config()
    seconds, events = timed(lambda: sum(1 for _ in generate(config)), repeat=3)
    detail = {"events": events, "nodes": config.nodes, "rate": config.rate, "duration_s": config.duration}
    results = [
        BenchResult(
            NAME,
            "generate events/s (every stage, full bodies)",
            events / seconds,
            "events/s",
            TARGET_EVENTS_PER_S,
            detail=detail,
        ),
    ]

    def encoded() -> int:
        return len(encode_ndjson(generate(config)))

    seconds_encoded, size = timed(encoded, repeat=1)
    results.append(
        BenchResult(
            NAME,
            "generate + encode NDJSON",
            events / seconds_encoded,
            "events/s",
            detail={"average_event_bytes": round(size / max(events, 1))},
        )
    )
    policy = compile_policy(load_preset().policy)
    seconds_simulated, report = timed(lambda: simulate(policy, generate(config)), repeat=1)
    results.append(
        BenchResult(
            NAME,
            "generate + simulate sample policy",
            events / seconds_simulated,
            "events/s",
            detail={
                "recorded_events": report.events,
                "recorded_average_bytes": round(report.bytes / max(report.events, 1)),
            },
        )
    )
    return results


if __name__ == "__main__":
    for result in run():
        print(f"{result.metric}: {result.value:,.0f} {result.unit} {result.detail}")
