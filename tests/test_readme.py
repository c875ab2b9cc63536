"""Every README example, run as written on the data its own commands produce, prints what the README shows.

The `$ kubetrail ...` commands of the README's fenced blocks run in order in one directory holding a copy of
`examples/` (heredocs write their files), and each output is compared with the lines the README shows.
Blocks that start long-running processes (serve, worker, demo, nats-server, curl, `&`) are left out.
Commands that do not depend on each other's files run side by side; a heredoc waits for every earlier step, since
the file it writes may name theirs.
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = PROJECT_ROOT / "README.md"

LONG_RUNNING = frozenset({"serve", "worker", "demo"})
ELLIPSES = frozenset({"...", "…"})
OUTPUT_OPTIONS = frozenset({"-o", "--output", "--out"})
STORE_OPTIONS = frozenset({"--store", "--lake"})
HEREDOC = re.compile(r"^cat > (?P<path>\S+) <<'?(?P<end>\w+)'?$")
TIMING = re.compile(r"\d[\d,]*(?:\.\d+)? ?s \([\d,]+(?:\.\d+)? events/s\)")
RATE = re.compile(r"[\d,]+(?:\.\d+)? events/s")
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
TIMEOUT = 120


@dataclass
class Step:
    """One `$` line of the README: a kubetrail command or a heredoc, and the output shown under it."""

    line: int
    command: str
    argv: list[str] = field(default_factory=list)
    head: int | None = None
    file: tuple[str, str] | None = None
    expected: list[str] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    after: set[int] = field(default_factory=set)


def fenced_blocks(text: str) -> list[list[tuple[int, str]]]:
    """The lines of each ``` fenced block, with their 1-based line numbers."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append((number, line))
    return blocks


def _path(token: str) -> str:
    """The file a command-line token names (`--opt=FILE` included), spelt one way."""
    return os.path.normpath(token.split("=", 1)[-1]) if token.startswith("--") else os.path.normpath(token)


def parse_command(line: int, command: str) -> Step | None:
    """A runnable step for `command`, or None when it needs a long-running process or a shell."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    head: int | None = None
    if "|" in tokens:
        at = tokens.index("|")
        match tokens[at + 1 :]:
            case ["head", count] if re.fullmatch(r"-\d+", count):
                head = int(count[1:])
            case ["head", "-n", count] if count.isdigit():
                head = int(count)
            case _:
                raise ValueError(f"README.md:{line}: unsupported shell syntax in {command!r}")
        tokens = tokens[:at]
    if len(tokens) < 2 or tokens[0] != "kubetrail" or tokens[1] in LONG_RUNNING or "&" in tokens:
        return None
    if any(token in {";", "&&", "||", ">", ">>", "<", "|&"} for token in tokens):
        raise ValueError(f"README.md:{line}: unsupported shell syntax in {command!r}")
    step = Step(line=line, command=command, argv=tokens[1:], head=head)
    for option, value in itertools.pairwise(tokens):
        names_file = value != "-" and ("." in value or "/" in value)
        if option in STORE_OPTIONS or (option in OUTPUT_OPTIONS and names_file):
            step.writes.add(_path(value))
    step.reads = {_path(token) for token in tokens[2:]} - step.writes
    return step


def parse_block(lines: list[tuple[int, str]]) -> list[Step] | None:
    """The steps of one block, or None when any of its commands cannot run here."""
    steps: list[Step] = []
    index = 0
    while index < len(lines):
        number, text = lines[index]
        index += 1
        if not text.startswith("$ "):
            if steps and steps[-1].file is None:
                steps[-1].expected.append(text)
            continue
        command = text[2:].strip()
        heredoc = HEREDOC.match(command)
        if heredoc:
            body: list[str] = []
            while index < len(lines) and lines[index][1] != heredoc["end"]:
                body.append(lines[index][1])
                index += 1
            index += 1
            path = _path(heredoc["path"])
            steps.append(Step(line=number, command=command, file=(path, "\n".join(body) + "\n"), writes={path}))
            continue
        step = parse_command(number, command)
        if step is None:
            return None
        steps.append(step)
    return steps


@cache
def readme_steps() -> tuple[Step, ...]:
    """Every runnable step of the README in order, each knowing the earlier steps whose files it uses."""
    if not README.is_file():
        return ()
    steps = [step for block in fenced_blocks(README.read_text()) for step in parse_block(block) or []]
    last_writer: dict[str, int] = {}
    readers: dict[str, set[int]] = {}
    for index, step in enumerate(steps):
        if step.file is not None:
            step.after |= set(range(index))
        for path in step.reads:
            if path in last_writer:
                step.after.add(last_writer[path])
            readers.setdefault(path, set()).add(index)
        for path in step.writes:
            if path in last_writer:
                step.after.add(last_writer[path])
            step.after |= readers.pop(path, set()) - {index}
            last_writer[path] = index
    return tuple(steps)


def environment() -> dict[str, str]:
    """A non-interactive environment: unbuffered (stdout and stderr in write order), no colour, 80 columns."""
    env = {key: value for key, value in os.environ.items() if key not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "80", "LINES": "25", "NO_COLOR": "1"})
    return env


def run_step(step: Step, workdir: Path) -> str:
    """What the step prints (stdout, then stderr when stdout goes through `head`)."""
    if step.file is not None:
        (workdir / step.file[0]).write_text(step.file[1])
        return ""
    done = subprocess.run(
        [sys.executable, "-m", "kubetrail.cli.main", *step.argv],
        cwd=workdir,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if step.head is None else subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if step.head is None:
        return done.stdout
    return "".join(done.stdout.splitlines(keepends=True)[: step.head]) + done.stderr


def run_session(steps: Sequence[Step], workdir: Path) -> list[str]:
    """Run the steps in README order, each once the steps it depends on are done, two or more at a time."""
    shutil.copytree(PROJECT_ROOT / "examples", workdir / "examples")
    futures: list[Future[str]] = []

    def after(step: Step) -> str:
        for index in step.after:
            futures[index].result()
        return run_step(step, workdir)

    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        futures.extend(pool.submit(after, step) for step in steps)
    return [future.result() for future in futures]


def normalise(line: str) -> str:
    """A line without what changes run to run: timings, rates, hashes, trailing spaces."""
    line = TIMING.sub("<time> (<rate> events/s)", line.rstrip())
    return SHA256.sub("<sha256>", RATE.sub("<rate> events/s", line))


def matches(expected: Sequence[str], actual: Sequence[str]) -> bool:
    """Whether actual shows expected line by line, an ellipsis line standing for any number of lines."""

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() in ELLIPSES:
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and normalise(expected[i]) == normalise(actual[j]) and match(i + 1, j + 1)

    return match(0, 0)


def trimmed(lines: Sequence[str]) -> list[str]:
    """The lines without blank lines at either end."""
    result = list(lines)
    while result and not result[-1].strip():
        result.pop()
    while result and not result[0].strip():
        result.pop(0)
    return result


def mismatch(step: Step, output: str) -> str | None:
    """Why the step's output is not what the README shows under it (a diff), or None when it is."""
    actual = trimmed(output.splitlines())
    expected = trimmed(step.expected)
    if matches(expected, actual) and not any(line.startswith("Traceback (most recent call last)") for line in actual):
        return None
    diff = difflib.unified_diff(
        [normalise(line) for line in expected],
        [normalise(line) for line in actual],
        f"README.md:{step.line}",
        f"$ {step.command}",
        lineterm="",
    )
    return "\n".join(diff)


def test_readme_has_runnable_examples() -> None:
    """The harness finds the README's examples (a parsing slip would otherwise test nothing)."""
    if not README.is_file():
        pytest.skip("README.md is absent")
    assert sum(1 for step in readme_steps() if step.file is None) >= 10


def test_every_example_prints_what_readme_shows(tmp_path: Path) -> None:
    """Each command's output, normalised, is the README's, `...` lines standing for omitted lines.

    One test for the whole session, so that pytest-xdist runs it once.
    """
    if not README.is_file():
        pytest.skip("README.md is absent")
    steps = readme_steps()
    outputs = run_session(steps, tmp_path)
    failures = [
        failure
        for step, output in zip(steps, outputs, strict=True)
        if step.file is None and (failure := mismatch(step, output)) is not None
    ]
    assert not failures, f"{len(failures)} README example(s) print something else:\n\n" + "\n\n".join(failures)
