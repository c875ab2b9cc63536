"""Detection throughput with Falco's default k8s_audit rules and with the built-in set, and memory as input grows.

Streams 1M distinct realistic audit events (`bench.corpus`, read from disk, never held in memory; read
again from the start beyond 1M) through the engine loaded with (a) ../shared/corpus/falco/k8s_audit_rules.yaml
under `rule_matching: all` and `first`, and (b) the built-in ruleset (stateless and stateful rules) under
`all`. Reported per CPU second of this single-threaded process: detection alone (over events decoded
beforehand, held in memory) and decode + detect (read from disk and decoded as `kubetrail detect` does).
Targets: ≥100k events/s of detection alone on one core; with decoding, ≥150k for Falco's rules and ≥100k
for the built-in set. The built-in set is
also run as it was at an earlier commit (`KUBETRAIL_BENCH_RULES_REF`, default the session's baseline: that
commit's code and rules, from `git archive`), alternating with this checkout in fresh interpreters over the
same events, so "did the built-in set get slower" is a ratio from one run (target: not below 1). Peak RSS
of a child process detecting over 250k and over 1M events, per rule set, shows whether memory stays flat.
KUBETRAIL_BENCH_SCALE scales the event counts. Run alone: `python -m bench.bench_detect`.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import BenchResult, sources_at
from bench.corpus import write_realistic_ndjson
from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, RuleSource, load_ruleset, rule_sources
from kubetrail.gc_tuning import tune_for_streaming
from kubetrail.intake import read_events
from kubetrail.model import Event

NAME = "detect"
PROJECT = Path(__file__).resolve().parent.parent
RULES = PROJECT.parent / "shared" / "corpus" / "falco" / "k8s_audit_rules.yaml"
CORPUS_EVENTS = 1_000_000
EVENTS = 1_000_000
MEMORY_SMALL = 250_000
TARGET_EVENTS_PER_S = 100_000.0
TARGET_FALCO_WITH_DECODE = 150_000.0
TARGET_BUILTIN_WITH_DECODE = 100_000.0
HELD_EVENTS = 100_000  # decoded once and cycled through for "detection alone"
TARGET_MEMORY_GROWTH = 1.25
RULES_REF = os.environ.get("KUBETRAIL_BENCH_RULES_REF", "d1fc949")


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 1000."""
    return max(1000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def stream(path: Path, count: int) -> Iterator[Event]:
    """`count` events, reading the file again from the start as often as needed."""
    produced = 0
    while produced < count:
        for event in read_events(path):
            yield event
            produced += 1
            if produced == count:
                return


def _engine(matching: Matching, rules: str = "falco") -> Engine:
    """An engine with Falco's rules file (`falco`) or the built-in set (`builtin`)."""
    if rules == BUILTIN:
        return Engine(load_ruleset(rule_sources([BUILTIN])), matching=matching)
    return Engine(load_ruleset([RuleSource(str(RULES), RULES.read_text())]), matching=matching)


def _held(path: Path, count: int) -> list[Event]:
    """The first min(count, HELD_EVENTS) events of `path`, decoded."""
    held: list[Event] = []
    for event in read_events(path):
        held.append(event)
        if len(held) >= min(count, HELD_EVENTS):
            break
    # The held events' lists and dicts would otherwise be scanned by every full collection that the decoding
    # passes of later measurements trigger, slowing them as `kubetrail detect` (which holds nothing) never is.
    gc.freeze()
    return held


def _detect_only(held: list[Event], count: int, engine: Engine) -> float:
    """CPU seconds to detect over `count` events cycled from `held` (no reading, no decoding)."""
    detect = engine.detect
    passes, rest = divmod(count, len(held))
    start = time.process_time()
    for _ in range(passes):
        for event in held:
            detect(EventContext(event))
    for event in held[:rest]:
        detect(EventContext(event))
    return time.process_time() - start


def _pipeline(path: Path, count: int, engine: Engine) -> tuple[float, int]:
    detect = engine.detect
    alerts = 0
    start = time.process_time()
    for event in stream(path, count):
        found = detect(EventContext(event))
        if found:
            alerts += len(found)
    return time.process_time() - start, alerts


def _child_peak(path: Path, count: int, rules: str = "falco") -> dict[str, float]:
    """Run detection over `count` events in a fresh interpreter; its peak RSS in MB."""
    command = [sys.executable, "-m", "bench.bench_detect", "--child", rules, str(path), str(count)]
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run() -> list[BenchResult]:
    if not RULES.is_file():
        return []
    count = scaled(EVENTS)
    path = write_realistic_ndjson(None, min(CORPUS_EVENTS, count))
    detail = {"events": count, "corpus": "bench.corpus.write_realistic_ndjson", "rules": "falco k8s_audit_rules.yaml"}
    held = _held(path, count)
    tune_for_streaming()  # the collector's settings of `kubetrail detect` (and every other streaming command)
    results: list[BenchResult] = []
    for matching in (Matching.ALL, Matching.FIRST):
        total_s, alerts = _pipeline(path, count, _engine(matching))
        detect_s = _detect_only(held, count, _engine(matching))
        info = detail | {"rule_matching": str(matching), "alerts": alerts, "cpu_seconds": round(total_s, 3)}
        results.append(
            BenchResult(
                NAME,
                f"detection (rule_matching {matching}): events/s",
                count / detect_s,
                "events/s",
                TARGET_EVENTS_PER_S,
                detail=info | {"detect_cpu_seconds": round(detect_s, 3)},
            )
        )
        results.append(
            BenchResult(
                NAME,
                f"decode + detect (rule_matching {matching}): events/s",
                count / total_s,
                "events/s",
                TARGET_FALCO_WITH_DECODE,
                detail=info,
            )
        )
    results.extend(_builtin(path, held, count, detail))
    results.extend(_builtin_before_after(path))
    results.extend(_stateful(held, count, detail))
    results.extend(_sigma(held, count, detail))
    for rules, label in (("falco", ""), (BUILTIN, "built-in set: ")):
        results.extend(_memory(path, count, rules, label))
    return results


def _builtin(path: Path, held: list[Event], count: int, detail: dict[str, object]) -> list[BenchResult]:
    """The built-in ruleset (what `kubetrail detect` runs by default), every matching rule."""
    engine = _engine(Matching.ALL, BUILTIN)
    total_s, alerts = _pipeline(path, count, engine)
    detect_s = _detect_only(held, count, _engine(Matching.ALL, BUILTIN))
    stateless = len(engine.rules)
    stateful = sum(len(getattr(detector, "specs", ())) for detector in engine.detectors)
    info = detail | {
        "rules": f"built-in set ({stateless} stateless, {stateful} stateful rules)",
        "rule_matching": "all",
        "alerts": alerts,
        "cpu_seconds": round(total_s, 3),
    }
    return [
        BenchResult(
            NAME,
            "built-in set detection: events/s",
            count / detect_s,
            "events/s",
            TARGET_EVENTS_PER_S,
            detail=info | {"detect_cpu_seconds": round(detect_s, 3)},
        ),
        BenchResult(
            NAME,
            "built-in set decode + detect: events/s",
            count / total_s,
            "events/s",
            TARGET_BUILTIN_WITH_DECODE,
            detail=info,
        ),
    ]


# Detection of the built-in set over the first N lines of a file, `passes` times, in whatever kubetrail the
# interpreter imports (PYTHONPATH picks this checkout or an earlier commit's tree): the API used here exists
# in both.
_BUILTIN_RUN = """
import json, sys, time
from kubetrail.detect import BUILTIN, Engine, EventContext, Matching, load_ruleset, rule_sources
from kubetrail.model import decode_event
with open(sys.argv[1], "rb") as handle:
    lines = [handle.readline() for _ in range(int(sys.argv[2]))]
events = [decode_event(line) for line in lines if line.strip()]
engine = Engine(load_ruleset(rule_sources([BUILTIN])), matching=Matching.ALL)
detect = engine.detect
alerts = 0
start = time.process_time()
for _ in range(int(sys.argv[3])):
    for event in events:
        alerts += len(detect(EventContext(event)))
seconds = time.process_time() - start
print(json.dumps({"seconds": seconds, "events": len(events) * int(sys.argv[3]), "rules": len(engine.rules),
                  "alerts": alerts}))
"""
BEFORE_AFTER_EVENTS = 200_000
BEFORE_AFTER_PASSES = 4
BEFORE_AFTER_ROUNDS = 5  # alternations; the best of each side counts (identical runs here differ by up to 45%)


def _run_builtin(source: Path, path: Path, count: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _BUILTIN_RUN, str(path), str(count), str(BEFORE_AFTER_PASSES)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(source)},
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _builtin_before_after(path: Path) -> list[BenchResult]:
    """`kubetrail detect`'s built-in set now and at RULES_REF (code and rules of that commit), alternating in
    fresh interpreters over the same events (best of two each): the speed a user sees, before and after."""
    count = scaled(BEFORE_AFTER_EVENTS)
    with tempfile.TemporaryDirectory() as folder:
        before_tree = sources_at(RULES_REF, Path(folder))
        if before_tree is None:
            return []
        now_tree = PROJECT / "src"
        runs: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
        for _ in range(BEFORE_AFTER_ROUNDS):
            runs["before"].append(_run_builtin(before_tree, path, count))
            runs["now"].append(_run_builtin(now_tree, path, count))
    best = {label: min(found, key=lambda run: run["seconds"]) for label, found in runs.items()}
    rate = {label: run["events"] / run["seconds"] for label, run in best.items()}
    detail = {
        "events": best["now"]["events"],
        "ref": RULES_REF,
        "rules_now": best["now"]["rules"],
        "rules_before": best["before"]["rules"],
        "alerts_now": best["now"]["alerts"],
        "alerts_before": best["before"]["alerts"],
        "seconds": {label: [round(run["seconds"], 3) for run in found] for label, found in runs.items()},
    }
    return [
        BenchResult(
            NAME, f"built-in set at {RULES_REF} (same run): events/s", rate["before"], "events/s", detail=detail
        ),
        BenchResult(NAME, "built-in set now (same run): events/s", rate["now"], "events/s", detail=detail),
        BenchResult(
            NAME, f"built-in set speed: now / {RULES_REF}", rate["now"] / rate["before"], "x", 1.0, detail=detail
        ),
    ]


def _memory(path: Path, count: int, rules: str, label: str) -> list[BenchResult]:
    """Peak RSS over 250k and over 1M events (fresh processes), and their ratio."""
    small = _child_peak(path, scaled(MEMORY_SMALL), rules)
    large = _child_peak(path, count, rules)
    return [
        BenchResult(NAME, f"{label}peak RSS, {small['events']:,.0f} events", small["peak_mb"], "MB", detail=small),
        BenchResult(NAME, f"{label}peak RSS, {large['events']:,.0f} events", large["peak_mb"], "MB", detail=large),
        BenchResult(
            NAME,
            f"{label}peak RSS growth (large / small input)",
            large["peak_mb"] / small["peak_mb"],
            "x",
            TARGET_MEMORY_GROWTH,
            higher_is_better=False,
            detail={"small_events": small["events"], "large_events": large["events"]},
        ),
    ]


STATEFUL_RULES = """\
- rule: Permission enumeration
  desc: many refusals for one user
  condition: ka.response.code = 403
  output: "%ka.user.name was refused"
  priority: NOTICE
  source: k8s_audit
  threshold: {count: 20, window: 5m, group_by: [ka.user.name]}
- rule: Secrets across namespaces
  desc: one user lists secrets in many namespaces
  condition: ka.target.resource = secrets and ka.verb = list
  output: "%ka.user.name listed secrets"
  priority: NOTICE
  source: k8s_audit
  threshold: {count: 5, window: 10m, group_by: [ka.user.name], distinct: ka.target.namespace}
- rule: Exec then RBAC change
  desc: exec, then a binding change by the same user
  output: "%ka.user.name changed RBAC after exec"
  priority: WARNING
  source: k8s_audit
  sequence:
    within: 10m
    by: [ka.user.name]
    steps:
      - condition: ka.target.subresource = exec
      - condition: ka.target.resource in (rolebindings, clusterrolebindings)
- rule: First secret read
  desc: a user reads secrets in a namespace for the first time
  condition: ka.target.resource = secrets and ka.verb in (get, list, watch)
  output: "%ka.user.name read secrets in %ka.target.namespace"
  priority: NOTICE
  source: k8s_audit
  first_seen: {key: [ka.user.name, ka.target.namespace], baseline: 30d, learn: 1h}
"""


def _stateful(held: list[Event], count: int, detail: dict[str, object]) -> list[BenchResult]:
    """Four stateful rules (threshold, distinct count, sequence, first-seen) alone, and their checkpoint."""
    import tempfile
    from dataclasses import asdict

    from kubetrail.detect import StatefulDetector

    engine = Engine(load_ruleset([RuleSource("stateful.yaml", STATEFUL_RULES)]))
    detect_s = _detect_only(held, count, engine)
    alerts = sum(len(engine.detect(EventContext(event))) for event in held)
    (detector,) = engine.detectors
    assert isinstance(detector, StatefulDetector)
    stats = {name: asdict(rule) for name, rule in detector.stats().items()}
    info = detail | {"rules": "4 stateful rules", "alerts": alerts, "detect_cpu_seconds": round(detect_s, 3)}
    info |= {"stats": stats}
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = Path(directory) / "stateful.ckpt"
        start = time.perf_counter()
        detector.save(str(checkpoint))
        save_s = time.perf_counter() - start
        size = checkpoint.stat().st_size
    return [
        BenchResult(NAME, "stateful detection (4 rules): events/s", count / detect_s, "events/s", detail=info),
        BenchResult(
            NAME, "stateful checkpoint save", save_s * 1000, "ms", higher_is_better=False, detail={"bytes": size}
        ),
    ]


SIGMA_RULES = PROJECT.parent / "shared" / "corpus" / "sigma"


def _sigma(held: list[Event], count: int, detail: dict[str, object]) -> list[BenchResult]:
    """SigmaHQ's Kubernetes audit rules (../shared/corpus/sigma) alone, evaluated in-process."""
    files = sorted(SIGMA_RULES.glob("*.yml"))
    if not files:
        return []
    engine = Engine(load_ruleset([RuleSource(str(file), file.read_text()) for file in files]))
    detect_s = _detect_only(held, count, engine)
    alerts = sum(len(engine.detect(EventContext(event))) for event in held)
    info = detail | {"rules": f"{len(files)} SigmaHQ rules", "alerts": alerts, "detect_cpu_seconds": round(detect_s, 3)}
    return [
        BenchResult(NAME, f"Sigma detection ({len(files)} rules): events/s", count / detect_s, "events/s", detail=info)
    ]


def _peak_mb() -> float:
    """This process's peak RSS in MB: VmHWM (reset by exec, unlike ru_maxrss, which keeps the forking parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(rules: str, path: str, count: int) -> None:
    engine = _engine(Matching.ALL, rules)
    loaded_mb = _peak_mb()
    alerts = 0
    for event in stream(Path(path), count):
        alerts += len(engine.detect(EventContext(event)))
    result = {"rules": rules, "events": count, "alerts": alerts, "loaded_mb": round(loaded_mb, 1)}
    print(json.dumps(result | {"peak_mb": round(_peak_mb(), 1)}))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        for measured in run():
            print(f"{measured.metric}: {measured.value:,.1f} {measured.unit}")
