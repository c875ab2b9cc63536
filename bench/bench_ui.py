"""Web UI page latency on a 1M-event store: p50/p95 per page over HTTP against a real `kubetrail serve`.

Pages are fetched on the UI's own port (`--ui-port`) over one keep-alive connection. The store is built once
and cached under bench/data/ui-store-<N>/: `kubetrail ingest` of the realistic corpus (`bench.corpus`), plus
the alerts the built-in rules raise on it (kept as `serve` keeps them). Each page is requested once to warm up
(the first request opens the UI's snapshot of the store, reported separately), then REPEAT times. The overview
is cached per snapshot, and so are a search's statistics (count, histogram, facets) and an identity's profile
(activity, tokens, addresses): their uncached cost is also measured in-process with the caches cleared. The
request page is measured on a person's Deployment write, whose cascade (what it caused) is inferred on every
request. Target: every page's p95 < 300 ms. Run alone: `python -m bench.bench_ui`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchResult
from kubetrail.store import Store

NAME = "ui"
PROJECT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT / "bench" / "data"
EVENTS = 1_000_000
REPEAT = 20
TARGET_MS = 300.0
DONE_MARK = ".ui-bench-complete"
INGEST = (sys.executable, "-m", "kubetrail.cli.main", "ingest")


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 20000."""
    return max(20_000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def _source(count: int) -> Path:
    existing = DATA_DIR / f"realistic-{count}-7.ndjson"
    if existing.exists():
        return existing
    from bench.corpus import write_realistic_ndjson

    return write_realistic_ndjson(None, count)


def _detect_into(store_dir: Path, source: Path) -> int:
    """Run the built-in rules over the log and keep the alerts in the store, as `serve` does."""
    from kubetrail.detect import EventContext
    from kubetrail.intake import read_events
    from kubetrail.pipeline.detection import build_engine, default_rule_specs
    from kubetrail.store.alerts import AlertLog

    engine = build_engine(default_rule_specs(), hostname="bench")
    log = AlertLog(store_dir)
    pending: list[Any] = []
    count = 0
    for event in read_events(source):
        pending.extend(engine.detect(EventContext(event, "prod", None)))
        if len(pending) >= 1000:
            log.append(pending)
            count += len(pending)
            pending = []
    log.append(pending)
    log.close()
    return count + len(pending)


def build_store(count: int) -> Path:
    """The cached store of `count` events with its alerts (built when missing)."""
    store_dir = DATA_DIR / f"ui-store-{count}"
    if (store_dir / DONE_MARK).exists():
        return store_dir
    shutil.rmtree(store_dir, ignore_errors=True)
    source = _source(count)
    subprocess.run(
        [*INGEST, "--store", str(store_dir), "--cluster", "prod", "--no-progress", str(source)],
        check=True,
        cwd=PROJECT,
    )
    alerts = _detect_into(store_dir, source)
    (store_dir / DONE_MARK).write_text(f"{count} events, {alerts} alerts\n")
    return store_dir


def _targets(store_dir: Path) -> dict[str, Any]:
    """Real values to ask for: the busiest human user, a recent secret read, a busy object, an alert."""
    store = Store.open(store_dir, read_only=True)
    try:
        connection = store.query_connection()
        user = connection.execute(
            'SELECT "user" FROM events WHERE "user" NOT LIKE \'system:%\' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1'
        ).fetchone()
        secret = connection.execute(
            "SELECT audit_id, time FROM events WHERE resource = 'secrets' ORDER BY time DESC LIMIT 1 OFFSET 500"
        ).fetchone()
        obj = connection.execute(
            "SELECT resource, namespace, name FROM events WHERE name IS NOT NULL AND namespace IS NOT NULL "
            "GROUP BY ALL ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        alert = connection.execute("SELECT audit_id, rule FROM alerts ORDER BY time DESC LIMIT 1").fetchone()
        write = connection.execute(
            "SELECT audit_id, time FROM events WHERE \"user\" NOT LIKE 'system:%' AND resource = 'deployments' "
            "AND verb IN ('create', 'patch', 'update') ORDER BY time DESC LIMIT 1 OFFSET 20"
        ).fetchone()
    finally:
        store.close()
    assert user and secret and obj
    return {"user": user[0], "secret": secret, "object": obj, "alert": alert, "write": write}


def _pages(targets: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    user, (audit_id, when), (resource, namespace, name) = targets["user"], targets["secret"], targets["object"]
    pages = [
        ("overview", "/ui/", {}),
        ("overview all", "/ui/", {"window": "all"}),
        ("search (no filter)", "/ui/search", {}),
        ("search secrets 403", "/ui/search", {"q": "resource=secrets code>=400"}),
        ("search page 20", "/ui/search", {"q": "verb=get", "page": "20"}),
        ("search user+verb", "/ui/search", {"q": f"user={user} verb in (create,update,patch,delete)"}),
        ("search facets (user)", "/ui/search", {"q": f"user={user}"}),
        ("request (secret read)", "/ui/request", {"id": audit_id, "t": when.isoformat()}),
        ("identity", "/ui/identity", {"user": user}),
        ("identity page 10", "/ui/identity", {"user": user, "page": "10"}),
        ("object history", "/ui/object", {"resource": resource, "ns": namespace, "name": name}),
        ("alerts", "/ui/alerts", {}),
        ("alerts Error+", "/ui/alerts", {"priority": "Error+"}),
    ]
    if targets["alert"] is not None:
        pages.append(("alert (around, history)", "/ui/alert", {"id": targets["alert"][0], "rule": targets["alert"][1]}))
    if targets["write"] is not None:
        write_id, write_time = targets["write"]
        pages.append(("request + cascade (write)", "/ui/request", {"id": write_id, "t": write_time.isoformat()}))
    return pages


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _overview_uncached(store_dir: Path) -> list[float]:
    """The overview computed from the snapshot every time (what the first visitor after a change waits for)."""
    from kubetrail.ui.data import UIData
    from kubetrail.ui.snapshot import StoreSnapshot

    store = Store.open(store_dir, read_only=True)
    try:
        snapshot = StoreSnapshot(store)
        data = UIData(snapshot)
        data.overview("24h")
        samples = []
        for _ in range(REPEAT):
            data._cache.clear()
            start = time.perf_counter()
            data.overview("24h")
            samples.append((time.perf_counter() - start) * 1000)
        snapshot.close()
        return samples
    finally:
        store.close()


def _uncached(store_dir: Path, user: str) -> list[BenchResult]:
    """Search statistics and an identity's profile computed from the snapshot every time (caches cleared)."""
    from kubetrail.ui.data import UIData
    from kubetrail.ui.snapshot import StoreSnapshot

    store = Store.open(store_dir, read_only=True)
    results = []
    try:
        snapshot = StoreSnapshot(store)
        data = UIData(snapshot)
        cases: list[tuple[str, Any]] = [
            ("search stats, no filter (uncached) p95", lambda: data.search_stats("")),
            ("search stats secrets 403 (uncached) p95", lambda: data.search_stats("resource=secrets code>=400")),
            ("search stats user (uncached) p95", lambda: data.search_stats(f"user={user}")),
            ("identity profile (uncached) p95", lambda: data.profile(user)),
        ]
        for label, compute in cases:
            compute()
            samples = []
            for _ in range(REPEAT // 2):
                data.clear_caches()
                start = time.perf_counter()
                compute()
                samples.append((time.perf_counter() - start) * 1000)
            p50, p95 = _percentiles(samples)
            results.append(BenchResult(NAME, label, p95, "ms", TARGET_MS, False, {"p50_ms": p50}))
        snapshot.close()
    finally:
        store.close()
    return results


def run() -> list[BenchResult]:
    from tests.serve.helpers import free_port, start_serve

    count = scaled(EVENTS)
    started = time.perf_counter()
    store_dir = build_store(count)
    built = time.perf_counter() - started
    targets = _targets(store_dir)
    results: list[BenchResult] = []
    overview = _overview_uncached(store_dir)
    p50, p95 = _percentiles(overview)
    results.append(
        BenchResult(NAME, "overview computed (in-process) p95", p95, "ms", TARGET_MS, False, {"p50_ms": p50})
    )
    results.extend(_uncached(store_dir, targets["user"]))
    port = free_port()
    process = start_serve("--store", str(store_dir), "--listen", "127.0.0.1:0", "--ui-port", str(port))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            start = time.perf_counter()
            client.get("/ui/alerts").raise_for_status()
            results.append(
                BenchResult(NAME, "first request (opens the snapshot)", (time.perf_counter() - start) * 1000, "ms")
            )
            for label, path, params in _pages(targets):
                client.get(path, params=params).raise_for_status()
                samples = []
                for _ in range(REPEAT):
                    start = time.perf_counter()
                    answer = client.get(path, params=params)
                    samples.append((time.perf_counter() - start) * 1000)
                    answer.raise_for_status()
                p50, p95 = _percentiles(samples)
                results.append(
                    BenchResult(NAME, f"{label} p95", p95, "ms", TARGET_MS, False, {"p50_ms": p50, "path": path})
                )
    finally:
        process.stop()
    for result in results:
        result.detail.update(events=count, store_build_s=round(built, 1))
    return results


if __name__ == "__main__":
    for item in run():
        p50 = item.detail.get("p50_ms")
        shown = f"p50 {p50:7.1f} ms  " if p50 is not None else " " * 17
        verdict = "" if item.passed is None else ("ok" if item.passed else "MISSED")
        print(f"{item.metric:45s} {shown}p95/value {item.value:7.1f} {item.unit}  {verdict}")
