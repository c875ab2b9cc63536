"""The library docs: docs/library.md runs as written and prints what it shows, and the site with the API reference
(`make docs`: mkdocs + mkdocstrings over the docstrings) builds without a warning.

The page's fenced blocks run in order in one directory and one namespace: ```python blocks are executed, a block
preceded by `<!-- file: NAME -->` is written to NAME, and a ```text block right after a python block is the output
that block must print. ```sh blocks are for the reader; the one that starts `kubetrail serve` is done here by a real
serve on a free loopback port, whose URL the page reads from KUBETRAIL_SERVE.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetrail.serve.config import build_config
from kubetrail.serve.server import BackgroundServer

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "library.md"
FILE_MARK = re.compile(r"^<!-- file: (?P<name>\S+) -->$")


@dataclass
class Block:
    line: int
    language: str
    text: str
    file: str | None = None
    output: str | None = None


def page_blocks(text: str) -> list[Block]:
    """The fenced blocks of a page; a text block directly after a python block becomes its `output`."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = previous_end = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("```"):
            index += 1
            continue
        start = index
        end = lines.index("```", index + 1)
        mark = FILE_MARK.match(lines[start - 1]) if start else None
        block = Block(start + 1, line[3:].strip(), "\n".join(lines[start + 1 : end]) + "\n", mark and mark["name"])
        previous = blocks[-1] if blocks else None
        between = lines[previous_end + 1 : start] if previous is not None else []
        if block.language == "text" and previous is not None and previous.language == "python" and not any(between):
            previous.output = block.text
        else:
            blocks.append(block)
        previous_end = end
        index = end + 1
    return blocks


def test_the_page_has_what_the_runner_expects() -> None:
    blocks = page_blocks(PAGE.read_text())
    assert {block.language for block in blocks} == {"python", "yaml", "sh"}
    assert all(block.file for block in blocks if block.language == "yaml")
    assert sum(block.output is not None for block in blocks) >= 4


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_library_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"store": str(tmp_path / "store"), "listen": "127.0.0.1:0", "rules": [], "ui": False}
    server = BackgroundServer(build_config({}, values))
    url = server.start()
    monkeypatch.setenv("KUBETRAIL_SERVE", url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "library_page"}
    try:
        for block in page_blocks(PAGE.read_text()):
            if block.file is not None:
                (tmp_path / block.file).write_text(block.text)
            elif block.language == "python":
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    exec(compile(block.text, f"{PAGE}:{block.line}", "exec"), namespace)
                if block.output is not None:
                    assert printed.getvalue() == block.output, f"docs/library.md:{block.line} prints otherwise"
    finally:
        server.stop()


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == []
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert 'id="kubetrail.AuditMiddleware"' in reference
