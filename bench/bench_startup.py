"""Start-up time of the `kubetrail` command against a bare click + rich program, in the same run.

The baseline is the least a click + rich command line costs: a script that imports click and rich and prints
its `--help`. Each case is the wall-clock time of a fresh process (the installed `kubetrail` script, as a user
runs it), best of REPEAT; the cases run round-robin, so the machine's load falls on all of them alike. Target:
every case within TARGET_RATIO times the baseline. `policy validate` reads a real audit policy (the recommended
preset), so its time includes loading and validating it. Run alone: `python -m bench.bench_startup`;
`KUBETRAIL_BENCH_SCALE=0.1` runs fewer repetitions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult

NAME = "startup"
REPEAT = 20
TARGET_RATIO = 2.0
PROJECT = Path(__file__).resolve().parent.parent
POLICY = PROJECT / "src" / "kubetrail" / "policy" / "presets" / "recommended.yaml"

BARE_PROGRAM = '''\
import click
import rich


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="bare")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """A bare click + rich program."""


@cli.command()
def hello() -> None:
    """Say hello."""
    rich.print("hello")


cli(prog_name="bare")
'''

CASES: list[tuple[str, tuple[str, ...]]] = [
    ("kubetrail --help", ("--help",)),
    ("kubetrail policy validate FILE", ("policy", "validate", str(POLICY))),
    ("kubetrail policy --help", ("policy", "--help")),
    ("kubetrail detect --help", ("detect", "--help")),
    ("kubetrail query --help", ("query", "--help")),
]


def repetitions() -> int:
    """REPEAT times KUBETRAIL_BENCH_SCALE (default 1), at least 5."""
    return max(5, int(REPEAT * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def kubetrail_command() -> list[str]:
    """The installed `kubetrail` script beside this interpreter, else `python -m kubetrail`."""
    script = Path(sys.executable).parent / "kubetrail"
    if script.is_file():
        return [str(script)]
    found = shutil.which("kubetrail")
    return [found] if found else [sys.executable, "-m", "kubetrail"]


def _once(argv: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.decode(errors='replace')}")
    return elapsed


def run() -> list[BenchResult]:
    """Best-of-N start-up seconds of the bare program and of each case, and each case's ratio to the bare one."""
    repeat = repetitions()
    command = kubetrail_command()
    with tempfile.TemporaryDirectory(prefix="kubetrail-bench-startup-") as folder:
        bare_script = Path(folder) / "bare.py"
        bare_script.write_text(BARE_PROGRAM)
        argvs = {"bare": [sys.executable, str(bare_script), "--help"]}
        argvs |= {metric: [*command, *args] for metric, args in CASES}
        for argv in argvs.values():  # warm the bytecode caches and the page cache
            _once(argv)
        best = dict.fromkeys(argvs, float("inf"))
        for _ in range(repeat):
            for metric, argv in argvs.items():
                best[metric] = min(best[metric], _once(argv))
    bare = best.pop("bare")
    results = [
        BenchResult(NAME, "bare click + rich program --help (baseline)", bare * 1000, "ms", higher_is_better=False)
    ]
    for metric, seconds in best.items():
        detail = {"ms": round(seconds * 1000, 1), "baseline_ms": round(bare * 1000, 1), "repeat": repeat}
        results.append(
            BenchResult(
                NAME, f"{metric} / baseline", seconds / bare, "x", TARGET_RATIO, higher_is_better=False, detail=detail
            )
        )
    return results


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main([NAME]))
