"""Where `policy simulate`, `diff` and `generate` read recorded events from: log files or a kubetrail store.

Logs are read through the intake, as every command reads them (`cli.inputs`); a refused record is counted,
reported and skipped. A progress bar follows the bytes read when stderr is a terminal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
from rich.console import Console

from kubetrail.cli.inputs import InputFiles
from kubetrail.detect import RuleSet, load_ruleset, rule_sources
from kubetrail.detect.sources import BUILTIN, BUILTIN_RULES_DIR
from kubetrail.errors import KubetrailError
from kubetrail.model import Event, decode_event

_STORE_BATCH = 10_000


class SimulationInputError(KubetrailError):
    """Inputs a simulation cannot run on (no events given, an unreadable store)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class InputTally:
    """How many events were read from a store and how many were skipped, with the first few reasons."""

    events: int = 0
    malformed: int = 0
    shown: list[str] = field(default_factory=list)
    files: InputFiles | None = None


def _from_files(files: tuple[str, ...], tally: InputTally, console: Console, input_format: str) -> Iterator[Event]:
    inputs = InputFiles(files, input_format=input_format, console=console)
    tally.files = inputs
    for event, _, _ in inputs.events():
        tally.events += 1
        yield event


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
    files: tuple[str, ...],
    store_dir: str | None,
    tally: InputTally,
    console: Console,
    input_format: str = "auto",
) -> Iterator[Event]:
    """The events of every file, then of the store (each event once, in input order)."""
    if not files and store_dir is None:
        raise SimulationInputError(
            "no events to replay", hint="pass audit log files recorded at RequestResponse level, or --store DIR"
        )
    yield from _from_files(files, tally, console, input_format)
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


def report_skipped(tally: InputTally, console: Console) -> None:
    """Warn about refused input records as every command does (see `cli.inputs`)."""

    def say(text: str) -> None:
        console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)

    if tally.files is not None:
        tally.files.report(say)
    for text in tally.shown:
        say(f"warning: skipped {text}")
    if tally.malformed > len(tally.shown):
        say(f"warning: {tally.malformed - len(tally.shown)} more malformed events skipped")


def exit_if_strict(tally: InputTally, strict: bool) -> None:
    """`--strict`: any refused input record makes the command exit 1 (after its output)."""
    if tally.files is not None:
        tally.files.exit_if_strict(strict)
