"""The generated stream: background requests arrive as a Poisson process, scenarios at fixed points,
and every request's stage events come out in timestamp order.

Randomness comes from separate seeded sources for the cluster, the background traffic and the
scenarios, so adding a scenario does not change the background around it.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Iterator

from kubetrail.emit.generator.background import PROFILE
from kubetrail.emit.generator.calls import Api, Call
from kubetrail.emit.generator.config import GeneratorConfig
from kubetrail.emit.generator.rollouts import Rollout, rollout_times
from kubetrail.emit.generator.scenarios import SCENARIO_FUNCTIONS
from kubetrail.emit.generator.stages import request_events
from kubetrail.emit.generator.world import World
from kubetrail.model.event import Event

_SECOND = 1_000_000
_DEFAULT_GAP_US = 2_000


def _rng(config: GeneratorConfig, purpose: str) -> random.Random:
    return random.Random(f"kubetrail-generator:{config.seed}:{purpose}")


def scenario_times(config: GeneratorConfig) -> list[tuple[int, str, int]]:
    """(start µs, scenario, repeat) of every injection: spread over the span, repeats apart, never at t=0."""
    rng = _rng(config, "scenario-times")
    span = int(config.duration * _SECOND)
    count = len(config.scenarios)
    planned: list[tuple[int, str, int]] = []
    for repeat in range(config.scenario_repeats):
        window = span / config.scenario_repeats
        for index, name in enumerate(config.scenarios):
            slot = window * (repeat + (index + 0.5) / max(count, 1))
            jitter = (rng.random() - 0.5) * window / max(count, 1) * 0.5
            planned.append((max(1, int(slot + jitter)), name, repeat))
    planned.sort()
    return planned


def generate(config: GeneratorConfig) -> Iterator[Event]:
    """Yield the fully detailed events (level RequestResponse, every stage) of the configured stream."""
    world = World.build(config.nodes, config.start, _rng(config, "cluster"))
    traffic = Api(world, _rng(config, "traffic"))
    attacks = Api(world, _rng(config, "scenarios"))
    workloads = Api(world, _rng(config, "rollouts"))
    weights = [source.weight * (config.nodes if source.per_node else 1) for source in PROFILE]
    cumulative = list(itertools.accumulate(weights))
    total_weight = cumulative[-1]
    # An arrival runs one source, which makes `calls` requests on average: scale arrivals to hit `rate`.
    calls_per_arrival = sum(w * source.calls for w, source in zip(weights, PROFILE, strict=True)) / total_weight
    mean_gap = _SECOND * calls_per_arrival / config.rate
    span = int(config.duration * _SECOND)
    planned = scenario_times(config)
    # A person's Deployment and the controllers' follow-ups: (µs, sequence, repeat, create or delete).
    lives: dict[int, Rollout] = {}
    rollouts: list[tuple[int, int, int, bool]] = []
    for repeat, (created, deleted) in enumerate(rollout_times(span, _rng(config, "rollout-times"))):
        rollouts.append((created, 2 * repeat, repeat, True))
        if deleted is not None:
            rollouts.append((deleted, 2 * repeat + 1, repeat, False))
    rollouts.sort()
    next_rollout = 0
    pending: list[tuple[int, int, Event]] = []
    sequence = itertools.count()
    push, pop = heapq.heappush, heapq.heappop
    rng = traffic.rng
    random_unit, exponential = rng.random, rng.expovariate
    next_plan = 0
    now = int(exponential(1.0) * mean_gap)

    def schedule(api: Api, calls: list[Call], start: int, ready: list[Event] | None) -> None:
        """Queue the calls' events; with `ready`, events due at `start` go there instead (nothing is earlier)."""
        at = start
        for position, call in enumerate(calls):
            if position:
                at += call.gap_us or _DEFAULT_GAP_US
            for stamp, event in request_events(call, api.new_id(), at, api.clock):
                if ready is not None and stamp == start:
                    ready.append(event)
                else:
                    push(pending, (stamp, next(sequence), event))
            at += call.latency_us

    while now < span or next_plan < len(planned) or next_rollout < len(rollouts):
        if next_rollout < len(rollouts) and (rollouts[next_rollout][0] <= now or now >= span):
            at, _, repeat, creating = rollouts[next_rollout]
            next_rollout += 1
            workloads.now = at
            if creating:
                life = lives[repeat] = Rollout(workloads, repeat)
                schedule(workloads, life.create(workloads), at, None)
            else:
                schedule(workloads, lives.pop(repeat).delete(workloads), at, None)
            continue
        if next_plan < len(planned) and (planned[next_plan][0] <= now or now >= span):
            at, name, repeat = planned[next_plan]
            next_plan += 1
            attacks.now = at
            schedule(attacks, SCENARIO_FUNCTIONS[name](attacks, repeat), at, None)
            continue
        while pending and pending[0][0] <= now:
            yield pop(pending)[2]
        traffic.now = now
        source = PROFILE[bisect.bisect_right(cumulative, random_unit() * total_weight)]
        ready: list[Event] = []
        schedule(traffic, source.source(traffic), now, ready)
        yield from ready
        now += max(1, int(exponential(1.0) * mean_gap))
    while pending:
        yield pop(pending)[2]
