"""Shared shape of benchmark results: every bench module returns a list of BenchResult."""

from __future__ import annotations

import compileall
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROJECT = Path(__file__).resolve().parent.parent


def sources_at(ref: str, folder: Path) -> Path | None:
    """The project's `src` at git `ref`, extracted under `folder` (None outside a git checkout or without that
    commit): a benchmark's "before" runs on it in a fresh interpreter with PYTHONPATH pointing there."""
    archive = subprocess.run(["git", "-C", str(PROJECT), "archive", ref, "src"], capture_output=True, check=False)
    if archive.returncode != 0:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    compile_bytecode(folder / "src")
    return folder / "src"


_PEAK_WRAPPER = """
import atexit, os, resource, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        own = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ["KUBETRAIL_BENCH_PEAK_FILE"], "w") as out:
        out.write(str(max(own, children)))

atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@dataclass
class ChildRun:
    """What one child process took: wall and CPU seconds (its own and its children's), peak RSS in MB."""

    seconds: float
    cpu_seconds: float
    peak_mb: float


def run_module_measured(module: str, args: Sequence[str], stdout: BinaryIO) -> ChildRun:
    """Run `python -m MODULE ARGS` writing to `stdout`; a non-zero exit raises RuntimeError.

    The peak RSS is the child's own high-water mark (VmHWM, which exec resets) or its largest child's. The
    wait4 rusage's ru_maxrss would not do: a process keeps the high-water mark of the process it was forked
    from, so after a benchmark that held a lot in memory every child would seem as large as the benchmark.
    """
    with tempfile.TemporaryDirectory(prefix="kubetrail-bench-peak-") as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**os.environ, "KUBETRAIL_BENCH_PEAK_FILE": str(peak_file)}
        command = [sys.executable, "-c", _PEAK_WRAPPER, module, *args]
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=subprocess.PIPE, env=env)
        assert child.stderr is not None
        error = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.stderr.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(f"python -m {module} {' '.join(args[:3])}… exited {code}: {error.decode()[-500:]}")
        peak_kb = int(peak_file.read_text()) if peak_file.exists() else 0
    return ChildRun(seconds, usage.ru_utime + usage.ru_stime, peak_kb / 1024)


def compile_bytecode(folder: Path) -> None:
    """Write `.pyc` files for every module under `folder`, as `pip install` does.

    Benchmarks start kubetrail in fresh interpreters; without bytecode on disk (an editable install under
    PYTHONDONTWRITEBYTECODE=1, a source tree just extracted) each start would compile every module it imports
    from source, which an installed tool never does.
    """
    compileall.compile_dir(str(folder), quiet=1, workers=1)


@dataclass
class BenchResult:
    """One measured quantity, with its target (if any) and whether the target holds."""

    bench: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """None when there is no target."""
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def timed(function: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Best wall-clock seconds of `repeat` runs, and the last run's result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def write_results(name: str, results: list[BenchResult]) -> Path:
    """Write `bench/results/<name>.json` with the machine's description."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "bench": name,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "results": [asdict(result) | {"passed": result.passed} for result in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
