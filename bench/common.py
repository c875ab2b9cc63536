"""Shared shape of benchmark results: every bench module returns a list of BenchResult."""

from __future__ import annotations

import compileall
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
