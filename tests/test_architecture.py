"""The layout shows the architecture: one intake, one pipeline, and dependencies that point one way.

Imports are read from the source (function-level imports included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "kubetrail"


@functools.cache
def package_imports() -> dict[str, set[str]]:
    """For each top-level package of kubetrail, the other top-level packages it imports (parsed once per run)."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if len(relative.parts) < 2:
            continue
        package = relative.parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "kubetrail" and len(parts) > 1 and parts[1] != package and (SRC / parts[1]).is_dir():
                    found[package].add(parts[1])
    return found


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen: set[str] = set()
    todo = [start]
    while todo:
        current = todo.pop()
        for nxt in graph.get(current, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_no_cycle_between_serve_ui_bus_and_the_pipeline() -> None:
    graph = package_imports()
    for package in ("serve", "ui", "bus", "pipeline", "intake", "collect", "store", "sources"):
        assert not reaches(graph, package, package), f"{package} imports itself back through {sorted(graph[package])}"


def test_the_intake_is_pure_and_low() -> None:
    """The intake decodes bytes: it needs the model and nothing of the doors, the store or the commands."""
    assert package_imports()["intake"] <= {"model"}


def test_one_intake_and_one_pipeline() -> None:
    assert (SRC / "intake" / "__init__.py").is_file() and (SRC / "pipeline" / "__init__.py").is_file()
    assert not (SRC / "collect" / "readers").exists()
    readers = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if "intake" not in path.parts
        and ("GzipFile(fileobj" in path.read_text() or "zlib.decompressobj" in path.read_text())
    ]
    assert readers == [], f"gzip is read outside the intake in {readers}"
