"""The shared benchmark corpus: a generated cluster's audit log as the sample policy records it.

`realistic_events(count)` returns exactly `count` recorded events (RequestReceived omitted, levels
and bodies as the sample policy keeps them, ~1.1 KB per JSON line); `write_realistic_ndjson` writes
them once as NDJSON and reuses the file until the generator or the policy changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from kubetrail.emit import generator as generator_package
from kubetrail.emit.generator import SCENARIOS, GeneratorConfig, generate
from kubetrail.model import Event, encode_ndjson
from kubetrail.policy import presets
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.record import record

DATA_DIR = Path(__file__).resolve().parent / "data"
NODES = 5
RATE = 50.0
RECORDED_PER_REQUEST = 0.4  # the sample policy writes ~0.42 events per request of this traffic
SCENARIO_EVERY_S = 1200.0


def _fingerprint() -> str:
    """A digest of the generator's and the presets' sources: a cached corpus is stale when it changes."""
    digest = hashlib.sha256()
    for package in (generator_package, presets):
        folder = Path(package.__file__).resolve().parent
        for path in sorted(folder.iterdir()):
            if path.suffix in (".py", ".yaml"):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _config(count: int, seed: int) -> GeneratorConfig:
    duration = max(60.0, count / (RATE * RECORDED_PER_REQUEST))
    return GeneratorConfig(
        seed=seed,
        nodes=NODES,
        rate=RATE,
        duration=duration,
        scenarios=SCENARIOS,
        scenario_repeats=max(1, int(duration / SCENARIO_EVERY_S)),
    )


def iter_realistic_events(count: int, seed: int = 7) -> Iterator[Event]:
    """Stream exactly `count` recorded events (a longer simulated span is generated if one is short)."""
    evaluate = compile_policy(load_preset().policy).evaluate_event
    produced = 0
    config = _config(count, seed)
    while True:
        for event in generate(config):
            kept = record(event, evaluate(event))
            if kept is None:
                continue
            yield kept
            produced += 1
            if produced == count:
                return
        # The span fell short of `count`: continue with the next seed's stream after it.
        seed += 1_000_003
        config = _config(count - produced, seed)


def realistic_events(count: int, seed: int = 7) -> list[Event]:
    """Exactly `count` events of a 5-node cluster with every attack scenario, as the sample policy records them."""
    return list(iter_realistic_events(count, seed))


def write_realistic_ndjson(path: str | Path | None, count: int, seed: int = 7) -> Path:
    """Write `realistic_events(count, seed)` as NDJSON to `path` (default `bench/data/…`); reuse it when current.

    A `.key` file beside the data records the generator's fingerprint, so stale files are rebuilt.
    """
    target = Path(path) if path is not None else DATA_DIR / f"realistic-{count}-{seed}.ndjson"
    key_file = target.with_name(target.name + ".key")
    key = f"{_fingerprint()} {count} {seed}"
    if target.exists() and key_file.exists() and key_file.read_text() == key:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as handle:
        batch: list[Event] = []
        for event in iter_realistic_events(count, seed):
            batch.append(event)
            if len(batch) == 10_000:
                handle.write(encode_ndjson(batch))
                batch.clear()
        handle.write(encode_ndjson(batch))
    partial.replace(target)
    key_file.write_text(key)
    return target


if __name__ == "__main__":
    import sys

    wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    written = write_realistic_ndjson(None, wanted)
    size = written.stat().st_size
    print(f"{written}: {wanted:,} events, {size / 1e6:.1f} MB, {size / wanted:.0f} B per event")
