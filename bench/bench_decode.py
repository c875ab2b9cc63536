"""Decode throughput: kubetrail's event model against stdlib json, orjson and a plain msgspec decoder.

Every contender decodes the same NDJSON file of realistic audit events (≥200k by default),
one event per line. Target: kubetrail's `read_events` (typed events, bodies kept raw) at least
3x the events/s of `json.loads`. Rates are per CPU second of this process (best of three), so
other work on the machine does not skew the comparison. Run alone: `python -m bench.bench_decode`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from bench.common import BenchResult
from bench.corpus import write_realistic_ndjson
from kubetrail.intake import read_events
from kubetrail.model import Event

NAME = "decode"
EVENTS = 200_000
SEED = 7
TARGET_RATIO_VS_JSON = 3.0


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 1000."""
    return max(1000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def corpus_file(count: int, seed: int = SEED) -> Path:
    """The shared realistic corpus as NDJSON (generated once, cached under bench/data/)."""
    return write_realistic_ndjson(None, count, seed)


# ---- the measurement ---------------------------------------------------------------------------------------------


def cpu_timed(function: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    """Best CPU seconds of this process over `repeat` runs (robust when other work shares the cores)."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def _per_line(decode: Callable[[bytes], Any], lines: list[bytes]) -> Callable[[], int]:
    def loop() -> int:
        for line in lines:
            decode(line)
        return len(lines)

    return loop


def _kubetrail(path: Path) -> Callable[[], int]:
    def loop() -> int:
        count = 0
        for _ in read_events(path):
            count += 1
        return count

    return loop


def run() -> list[BenchResult]:
    """Measure events/s and MB/s of each decoder over the same NDJSON file."""
    count = scaled(EVENTS)
    path = corpus_file(count)
    data = path.read_bytes()
    lines = data.splitlines()
    megabytes = len(data) / 1e6
    detail = {
        "events": len(lines),
        "megabytes": round(megabytes, 1),
        "average_event_bytes": round(len(data) / max(1, len(lines))),
        "corpus": "bench.corpus.write_realistic_ndjson",
    }
    raw_msgspec = msgspec.json.Decoder(Event)
    contenders: list[tuple[str, Callable[[], int], str]] = [
        ("json.loads per line", _per_line(json.loads, lines), "stdlib json → dict"),
        ("orjson.loads per line", _per_line(orjson.loads, lines), "orjson → dict"),
        ("msgspec Decoder(Event) per line", _per_line(raw_msgspec.decode, lines), "typed Event, bodies raw"),
        ("kubetrail read_events(file)", _kubetrail(path), "typed Event, bodies raw, reads + splits the file"),
    ]
    rates: dict[str, float] = {}
    results: list[BenchResult] = []
    for label, function, what in contenders:
        seconds, decoded = cpu_timed(function)
        if decoded != len(lines):
            raise RuntimeError(f"{label} decoded {decoded} events, expected {len(lines)}")
        rates[label] = len(lines) / seconds
        info = detail | {"what": what, "cpu_seconds": round(seconds, 3)}
        results.append(BenchResult(NAME, f"{label}: events/s", rates[label], "events/s", detail=info))
        results.append(BenchResult(NAME, f"{label}: MB/s", megabytes / seconds, "MB/s", detail=info))
    kubetrail = rates["kubetrail read_events(file)"]
    results.append(
        BenchResult(
            NAME,
            "kubetrail / json.loads",
            kubetrail / rates["json.loads per line"],
            "x",
            target=TARGET_RATIO_VS_JSON,
            detail=detail,
        )
    )
    results.append(BenchResult(NAME, "kubetrail / orjson", kubetrail / rates["orjson.loads per line"], "x"))
    results.append(
        BenchResult(NAME, "kubetrail / raw msgspec", kubetrail / rates["msgspec Decoder(Event) per line"], "x")
    )
    return results


if __name__ == "__main__":
    from rich.console import Console

    from bench.__main__ import render

    render(run(), Console(width=132))
