"""How every command reads FILE arguments: through the intake, with a progress bar, reporting refusals alike.

`detect`, `ingest`, `query --file`, `investigate --file`, `policy explain/simulate/diff/generate`, `rbac` and
`secrets` all accept the same inputs (native logs, EventLists, JSON arrays, gzip, rotated sets, EKS / GKE / AKS
exports) and say the same things about them: the first refused records by `file:line: reason`, how many more,
and what was skipped as not an audit event. Unusable input (a missing file, gzip that cannot be read, a format
nobody can tell, or input with not one event among refused records) is a one-line error with a hint, exit 2;
`--strict` makes any refused record exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubetrail.intake import FORMATS, IntakeError, Tally

if TYPE_CHECKING:
    from rich.console import Console

    from kubetrail.intake import Batch
    from kubetrail.model import Event

F = TypeVar("F", bound=Callable[..., Any])


format_option = click.option(
    "--format",
    "input_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Input format: native audit log (k8s) or an EKS / GKE / AKS export; auto tells them apart.",
)
strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Exit with code 1 when any input record was refused (they are reported either way).",
)


def input_options(function: F) -> F:
    """`--format` and `--strict`, the same for every command that reads FILEs."""
    return format_option(strict_option(function))


class InputFiles:
    """FILE arguments read through the intake: batches with a progress bar, refusals counted and reported."""

    def __init__(
        self,
        arguments: Sequence[str | Path],
        *,
        input_format: str = "auto",
        console: Console | None = None,
        progress: bool | None = None,
        label: str = "reading",
    ) -> None:
        from rich.console import Console

        from kubetrail.intake import expand_inputs

        self.paths = expand_inputs(arguments)
        self.input_format = input_format
        self.console = console or Console(stderr=True)
        self.show_progress = progress if progress is not None else self.console.is_terminal
        self.label = label
        self.tally = Tally(files=len(self.paths))

    def batches(self) -> Iterator[tuple[Path, Batch]]:
        """(path, batch) of every file in order, counted as they go."""
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        from kubetrail.intake import input_size, read_path

        sizes = [input_size(path) for path in self.paths]
        columns = (
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[events]:>12,} events"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=True, disable=not self.show_progress) as bar:
            task = bar.add_task(self.label, total=sum(sizes) or None, events=0)
            done = 0
            for path, size in zip(self.paths, sizes, strict=True):
                bar.update(task, description=path.name if str(path) != "-" else "stdin")
                for batch in read_path(path, self.input_format):
                    self.tally.count(batch)
                    yield path, batch
                    bar.update(task, completed=done + batch.position, events=self.tally.events)
                done += size
                bar.update(task, completed=done)

    def events(self) -> Iterator[tuple[Event, bytes | None, str | None]]:
        """(event, its JSON when known, its cluster when the input names one) for every event, in order."""
        for _, batch in self.batches():
            cluster = batch.cluster
            for event, raw in zip(batch.events, batch.raws, strict=True):
                yield event, raw, cluster

    def report(self, say: Callable[[str], None] | None = None) -> None:
        """Report refused and skipped records (or fail: input without one event among refused records)."""
        report_tally(self.tally, say or self._say)

    def _say(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False, emoji=False)

    def exit_if_strict(self, strict: bool) -> None:
        """Under --strict, exit 1 when any record was refused (call it after the command's output)."""
        exit_if_strict(self.tally, strict)


def report_tally(tally: Tally, say: Callable[[str], None]) -> None:
    """Input with not one event among refused records is unusable: an error naming the first (exit 2).
    Otherwise the refused records are reported (the first by location, then a count) with the skipped ones."""
    if tally.rejected and not tally.events:
        plural = "record" if tally.rejected == 1 else "records"
        first = tally.shown[0] if tally.shown else None
        raise IntakeError(
            f"no audit events found: {tally.rejected:,} {plural} refused",
            source=first.source if first is not None and tally.files == 1 else "",
            hint=f"the first: {first}" if first is not None else "",
        )
    for line in tally.lines():
        say(line)


def exit_if_strict(tally: Tally, strict: bool) -> None:
    """`--strict`: any refused record makes the command exit 1."""
    if strict and tally.rejected:
        sys.exit(1)
