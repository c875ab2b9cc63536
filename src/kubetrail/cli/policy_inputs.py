"""Where `policy simulate` and `policy diff` read recorded events from: log files or a kubetrail store.

Logs are read as `kubetrail detect` reads them (NDJSON, EventList or JSON arrays, gzip or not); a malformed
event is counted and skipped. A progress bar follows the bytes read when stderr is a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from kubetrail.cli.detect import Malformed, read_input
from kubetrail.detect import RuleSet, load_ruleset, rule_sources
from kubetrail.detect.sources import BUILTIN, BUILTIN_RULES_DIR
from kubetrail.errors import KubetrailError
from kubetrail.model import Event, decode_event

_PROGRESS_EVERY = 4096
_STORE_BATCH = 10_000


class SimulationInputError(KubetrailError):
    """Inputs a simulation cannot run on (no events given, an unreadable store)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class InputTally:
    """How many events were read and how many were skipped, with the first few reasons."""

    events: int = 0
    malformed: int = 0
    shown: list[str] = field(default_factory=list)


def _from_files(files: tuple[str, ...], tally: InputTally, console: Console) -> Iterator[Event]:
    sizes = [Path(name).stat().st_size if name != "-" else 0 for name in files]
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("reading", total=sum(sizes) or None)
        done = 0
        for name, size in zip(files, sizes, strict=True):
            progress.update(task, description=Path(name).name if name != "-" else "stdin")
            handle = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            try:
                for item in read_input(name, handle):
                    if isinstance(item, Malformed):
                        tally.malformed += 1
                        if len(tally.shown) < 10:
                            tally.shown.append(str(item))
                        continue
                    tally.events += 1
                    yield item[0]
                    if tally.events % _PROGRESS_EVERY == 0 and name != "-":
                        progress.update(task, completed=done + handle.tell())
            finally:
                if handle is not sys.stdin.buffer:
                    handle.close()
            done += size
            progress.update(task, completed=done)


def _from_store(store_dir: str, tally: InputTally) -> Iterator[Event]:
    from kubetrail.store.store import Store

    store = Store.open(store_dir, read_only=True)
    try:
        connection = store.query_connection()
        cursor = connection.execute("SELECT event FROM events ORDER BY time")
        while rows := cursor.fetchmany(_STORE_BATCH):
            for (text,) in rows:
                try:
                    event = decode_event(text.encode(), source=store_dir)
                except (KubetrailError, msgspec.DecodeError) as error:
                    tally.malformed += 1
                    if len(tally.shown) < 10:
                        tally.shown.append(f"{store_dir}: {error}")
                    continue
                tally.events += 1
                yield event
    finally:
        store.close(seal=False)


def recorded_events(
    files: tuple[str, ...], store_dir: str | None, tally: InputTally, console: Console
) -> Iterator[Event]:
    """The events of every file, then of the store (each event once, in input order)."""
    if not files and store_dir is None:
        raise SimulationInputError(
            "no events to replay", hint="pass audit log files recorded at RequestResponse level, or --store DIR"
        )
    yield from _from_files(files, tally, console)
    if store_dir is not None:
        yield from _from_store(store_dir, tally)


def active_rules(specs: tuple[str, ...], no_coverage: bool) -> tuple[RuleSet | None, str]:
    """The detection rules coverage runs (`--rules`, else the built-in set when installed) and where from."""
    if no_coverage:
        return None, "coverage skipped (--no-coverage)"
    if not specs:
        if not (BUILTIN_RULES_DIR.is_dir() and any(BUILTIN_RULES_DIR.glob("*.y*ml"))):
            return None, "coverage skipped: no built-in ruleset installed; pass --rules FILE|DIR"
        specs = (BUILTIN,)
    return load_ruleset(rule_sources(specs)), ", ".join(specs)


def report_skipped(tally: InputTally, say: Callable[[str], None]) -> None:
    """Warn about malformed input events (the first few by location, then a count)."""
    for text in tally.shown:
        say(f"warning: skipped {text}")
    if tally.malformed > len(tally.shown):
        say(f"warning: {tally.malformed - len(tally.shown)} more malformed events skipped")
