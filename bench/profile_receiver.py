"""Profile `kubetrail serve` under the receiver bench's load with py-spy (sampling, GIL holders only).

Starts serve exactly as `bench_receiver` does, warms it up, then samples it with `py-spy record --gil --format raw
--nolineno --threads` while the bench's clients post their EventLists, and prints the top functions by self time
and by cumulative time (percent of the samples in which a thread held the GIL), and what share each thread had.
py-spy is not a project dependency: `pip install py-spy` into the virtualenv first (and run as root or with
ptrace allowed). Used for docs/receiver-profile.md.

Run: `python -m bench.profile_receiver [--events N] [--top N] [--rate HZ] [--source OLD/src] [-- serve flags]`
(`--source`: the `src` folder of another checkout, e.g. `git archive COMMIT src | tar -x -C /tmp/old`).
"""

from __future__ import annotations

import argparse
import collections
import gc
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_receiver import BATCH, CLIENTS, batches, post_all, serve_command, start_process

_LINE = re.compile(r"^(.*) (\d+)$")
_THREAD = re.compile(r"^(?:process \d+:)?\"?(.*?)\"?$")


def _frame_name(frame: str) -> str:
    """`function (module/path.py)` shortened to `module.path:function`."""
    found = re.match(r"(.*) \((.*)\)$", frame)
    if not found:
        return frame
    function, path = found.groups()
    return f"{path.removesuffix('.py').replace('/', '.')}:{function}"


def summarise(raw: Path, top: int) -> str:
    """The top functions by self and cumulative share of GIL-holding samples, and the share of each thread."""
    own: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        stack, count = found.group(1).split(";"), int(found.group(2))
        total += count
        thread = stack[0]
        threads[re.sub(r"\(\d+\)|0x[0-9a-f]+", "", thread).strip()] += count
        frames = [_frame_name(frame) for frame in stack[1:]]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            cumulative[frame] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "| thread | share |", "| --- | ---: |"]
    lines += [f"| {name} | {count / total:.1%} |" for name, count in threads.most_common(8)]
    for title, counter in (("self", own), ("cumulative", cumulative)):
        lines += ["", f"| function ({title}) | share |", "| --- | ---: |"]
        lines += [f"| `{name}` | {count / total:.1%} |" for name, count in counter.most_common(top)]
    return "\n".join(lines)


def stages(events: int) -> str:
    """CPU per event of each step a webhook batch goes through, measured in this process on the bench's bodies
    (thread CPU time, best of three: steady under other load, unlike wall-clock rates)."""
    import msgspec

    from kubetrail.detect import EventContext
    from kubetrail.detect.requests import OncePerRequest
    from kubetrail.intake import decode_body
    from kubetrail.model.event import EventList
    from kubetrail.pipeline.detection import build_engine, default_rule_specs
    from kubetrail.pipeline.detection_process import decode_record_batch
    from kubetrail.store import Store, StoreOptions
    from kubetrail.store.columns import build_rows
    from kubetrail.store.wal import WalBatch, encode_record

    gc.collect()  # serve's collector tuning (`serve.server._tune_gc`)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    bodies = batches(events)
    count = len(bodies) * BATCH
    typed = msgspec.json.Decoder(EventList)
    decoded = [decode_body(body, source="bench", max_event_bytes=256 << 10) for body in bodies]
    rows = [build_rows("bench", batch.events, batch.raws) for batch in decoded]
    per_request = OncePerRequest(build_engine(default_rule_specs()))
    lines = [row.lines for row in rows]

    def timed(step: Callable[[], object], repeat: int = 3) -> float:
        best = float("inf")
        for _ in range(repeat):
            started = time.thread_time()
            step()
            best = min(best, time.thread_time() - started)
        return best / count * 1e6

    def store_appends() -> None:
        with tempfile.TemporaryDirectory() as folder:
            store = Store.open(folder, StoreOptions(background_seal=False, commit_interval=0.0))
            for batch in decoded:
                store.append("bench", batch.events, batch.raws)
            store.close(seal=False)

    def seal() -> None:
        with tempfile.TemporaryDirectory() as folder:
            store = Store.open(folder, StoreOptions(background_seal=False, commit_interval=0.0))
            for batch in decoded:
                store.append("bench", batch.events, batch.raws)
            started = time.thread_time()
            store.seal()
            sealed[0] = min(sealed[0], time.thread_time() - started)
            store.close(seal=False)

    sealed = [float("inf")]
    for _ in range(2):
        seal()

    records = [encode_record(WalBatch("bench", 0, batch)) for batch in lines]

    def detect() -> None:  # what the detection process does with each WAL record it is handed
        for record in records:
            cluster, raws, decoded_events = decode_record_batch(record)
            for event, raw in zip(decoded_events, raws, strict=True):
                per_request.detect(EventContext(event, cluster, raw))

    def each(step: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                step(item)  # the result is dropped at once, as a server drops a request's objects

        return run

    steps = [
        ("baseline: typed EventList decode (msgspec)", timed(each(typed.decode, bodies))),
        (
            "intake decode_body (items split raw, each decoded typed)",
            timed(each(lambda body: decode_body(body, source="bench", max_event_bytes=256 << 10), bodies)),
        ),
        (
            "store rows (build_rows: stored JSON, keys, times)",
            timed(each(lambda batch: build_rows("bench", batch.events, batch.raws), decoded)),
        ),
        ("WAL record (encode_record)", timed(each(lambda batch: encode_record(WalBatch("bench", 0, batch)), lines))),
        ("Store.append whole (rows, dedup, record, write; fsync waited)", timed(store_appends, 2)),
        ("sealing to Parquet (seal thread)", sealed[0] / count * 1e6),
        ("detection process: decode + built-in rules", timed(detect, 1)),
    ]
    table = ["| step | CPU µs per event |", "| --- | ---: |"]
    table += [f"| {name} | {value:.2f} |" for name, value in steps]
    return "\n".join(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=250)
    parser.add_argument("--output", type=Path, default=None, help="keep py-spy's raw stacks here")
    parser.add_argument("--all-threads", action="store_true", help="sample running threads, GIL held or not")
    parser.add_argument("--source", type=Path, default=None, help="profile the `src` tree here (an older checkout)")
    parser.add_argument("serve_flags", nargs="*")
    parser.add_argument("--stages", action="store_true", help="CPU per event of each step, in this process")
    arguments = parser.parse_args()
    if arguments.stages:
        print(stages(min(arguments.events, 40_000)))
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    bodies = batches(arguments.events)
    folder = Path(tempfile.mkdtemp(prefix="kubetrail-profile-"))
    raw = arguments.output or folder / "stacks.txt"
    process, url = start_process([*serve_command(folder / "store"), *arguments.serve_flags], arguments.source)
    try:
        post_all(url, bodies[: 2 * CLIENTS], CLIENTS)
        flags = [*([] if arguments.all_threads else ["--gil"]), "--threads", "--nonblocking", "--nolineno"]
        flags += ["--format", "raw", "--rate", str(arguments.rate)]
        spy = subprocess.Popen(
            [py_spy, "record", "-p", str(process.pid), *flags, "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        seconds, _latencies, failures = post_all(url, bodies, CLIENTS)
        spy.send_signal(2)
        spy.wait(timeout=60)
    finally:
        process.terminate()
        process.wait(timeout=120)
        threading.Thread(target=shutil.rmtree, args=(folder / "store",), kwargs={"ignore_errors": True}).start()
    events = len(bodies) * BATCH
    print(f"{events / seconds:,.0f} events/s under the profiler ({failures} failed batches)\n")
    print(summarise(raw, arguments.top))


if __name__ == "__main__":
    main()
