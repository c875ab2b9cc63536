"""Where rules come from: files, directories of YAML files, and the built-in set inside the package."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kubetrail.detect.errors import RuleLoadError
from kubetrail.detect.rulefile import RuleSource

BUILTIN = "builtin"
BUILTIN_RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_SUFFIXES = (".yaml", ".yml")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(child for child in path.iterdir() if child.is_file() and child.suffix in RULE_SUFFIXES)
    return [path]


def rule_sources(specs: Iterable[str | Path]) -> list[RuleSource]:
    """Read rule files in the order given; a directory contributes its *.yaml files by name; `builtin` the package's."""
    sources: list[RuleSource] = []
    for spec in specs:
        if str(spec) == BUILTIN:
            files = _files(BUILTIN_RULES_DIR) if BUILTIN_RULES_DIR.is_dir() else []
            if not files:
                raise RuleLoadError(
                    "no built-in ruleset is installed in this version",
                    source=BUILTIN,
                    hint="pass a rules file or directory with --rules, e.g. Falco's k8s_audit_rules.yaml",
                )
        else:
            path = Path(spec)
            if not path.exists():
                raise RuleLoadError("no such rules file or directory", source=str(path))
            files = _files(path)
            if not files:
                raise RuleLoadError("the directory holds no .yaml rule files", source=str(path))
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise RuleLoadError(f"cannot read rules file: {error}", source=str(file)) from None
            sources.append(RuleSource(str(file), text))
    return sources
