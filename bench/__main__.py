"""Run kubetrail's benchmarks: `python -m bench [NAMES...]`.

Discovers every `bench/bench_*.py` module (each has `run() -> list[BenchResult]`), runs the
selected ones (all when no NAMES; `decode` and `bench_decode` both select bench_decode.py),
prints one table and writes `bench/results/<name>.json`. A missed target is reported, not
fatal: the exit code is 0 unless a benchmark itself crashed. `KUBETRAIL_BENCH_SCALE=0.1`
shrinks the workloads of benchmarks that honour it, for a quick run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

import kubetrail
from bench.common import BenchResult, compile_bytecode, write_results

BENCH_DIR = Path(__file__).resolve().parent
PREFIX = "bench_"


def discover() -> list[str]:
    """Names (without the `bench_` prefix) of every benchmark module, sorted."""
    return sorted(path.stem.removeprefix(PREFIX) for path in BENCH_DIR.glob(f"{PREFIX}*.py"))


def select(available: list[str], wanted: list[str]) -> list[str]:
    """The benchmarks named in `wanted` (all when empty); unknown names raise SystemExit."""
    if not wanted:
        return available
    chosen: list[str] = []
    for name in wanted:
        short = Path(name).stem.removeprefix(PREFIX)
        if short not in available:
            raise SystemExit(f"error: no benchmark {name!r} (available: {', '.join(available) or 'none'})")
        if short not in chosen:
            chosen.append(short)
    return chosen


def _format_value(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _verdict(result: BenchResult) -> str:
    if result.passed is None:
        return ""
    return "[green]pass[/green]" if result.passed else "[bold red]MISSED[/bold red]"


def render(results: list[BenchResult], console: Console) -> None:
    """Print one table of every result, with each target and whether it holds."""
    table = Table(title="kubetrail benchmarks", show_lines=False)
    for column, justify in (
        ("bench", "left"),
        ("metric", "left"),
        ("value", "right"),
        ("unit", "left"),
        ("target", "right"),
        ("", "left"),
    ):
        table.add_column(column or "pass/fail", justify=justify)  # type: ignore[arg-type]
    for result in results:
        target = ""
        if result.target is not None:
            target = ("≥ " if result.higher_is_better else "≤ ") + _format_value(result.target)
        table.add_row(result.bench, result.metric, _format_value(result.value), result.unit, target, _verdict(result))
    console.print(table)


def run_one(name: str, console: Console) -> list[BenchResult] | None:
    """Run one benchmark module; None (after printing why) when it crashes."""
    console.print(f"[bold]running[/bold] {PREFIX}{name} …")
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{PREFIX}{name}")
        results: list[BenchResult] = module.run()
    except Exception:
        console.print(f"[bold red]{PREFIX}{name} crashed:[/bold red]")
        console.print(traceback.format_exc(), markup=False, highlight=False)
        return None
    path = write_results(name, results)
    console.print(f"  done in {time.perf_counter() - started:.1f} s → {path.relative_to(BENCH_DIR.parent)}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print the table, return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 132)
    compile_bytecode(Path(kubetrail.__file__).resolve().parent)
    everything: list[BenchResult] = []
    crashed: list[str] = []
    for name in select(available, args.names):
        results = run_one(name, console)
        if results is None:
            crashed.append(name)
        else:
            everything.extend(results)
    render(everything, console)
    missed = [f"{result.bench}: {result.metric}" for result in everything if result.passed is False]
    if missed:
        console.print(f"[bold red]{len(missed)} target(s) missed:[/bold red] " + "; ".join(missed))
    if crashed:
        console.print(f"[bold red]crashed:[/bold red] {', '.join(crashed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
