"""Shared helpers for the built-in ruleset tests: the rules as written, fixtures, and an engine over them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from kubetrail.detect import (
    BUILTIN,
    BUILTIN_RULES_DIR,
    Engine,
    EventContext,
    Matching,
    RuleSet,
    load_ruleset,
    rule_sources,
)
from kubetrail.detect.requests import OncePerRequest
from kubetrail.detect.rulefile import RuleSource
from kubetrail.model import decode_document

FIXTURES = Path(__file__).parent / "fixtures"
_NAME = re.compile(r"\b[a-z_][a-z0-9_]*\b")


@dataclass(frozen=True)
class WrittenRule:
    """A rule item of a built-in rules file, read as plain YAML (what the docs and the theme map use)."""

    name: str
    file: str
    item: dict[str, Any]

    @property
    def themes(self) -> list[int]:
        return [int(theme) for theme in self.item.get("themes", [])]


def written_rules() -> list[WrittenRule]:
    """Every `rule:` item of the built-in set, in load order."""
    found = []
    for path in sorted(BUILTIN_RULES_DIR.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if isinstance(item, dict) and "rule" in item:
                found.append(WrittenRule(str(item["rule"]), path.name, item))
    return found


def written_macros() -> dict[str, str]:
    """Every `macro:` of the built-in set by name, its condition as written (a later definition wins)."""
    found = {}
    for path in sorted(BUILTIN_RULES_DIR.glob("*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if isinstance(item, dict) and "macro" in item:
                found[str(item["macro"])] = str(item["condition"])
    return found


def expanded_condition(rule: WrittenRule) -> str:
    """The rule's condition with every built-in macro written out in parentheses, whitespace collapsed."""
    macros = written_macros()

    def expand(text: str, within: tuple[str, ...]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(0)
            if name in macros and name not in within:
                return f"({expand(macros[name], (*within, name))})"
            return name

        return _NAME.sub(replace, text)

    return " ".join(expand(str(rule.item.get("condition", "")), ()).split())


def slug(name: str) -> str:
    """The fixture directory name of a rule: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def load_events(path: Path) -> list[bytes]:
    """A fixture file's events as JSON lines: one object, or an array for a sequence."""
    document = json.loads(path.read_text(encoding="utf-8"))
    items = document if isinstance(document, list) else [document]
    return [json.dumps(item).encode() for item in items]


@cache
def _ruleset(extra: Path | None) -> RuleSet:
    sources = rule_sources([BUILTIN])
    if extra is not None:
        sources.append(RuleSource(str(extra), extra.read_text(encoding="utf-8")))
    return load_ruleset(sources)


def engine_for(directory: Path) -> OncePerRequest:
    """The built-in set (plus the fixture's own `rules.yaml` additions, if any), every matching rule firing once
    per request, as every kubetrail command runs it.

    Each call starts with empty state, so one fixture's sequence never leaks into another's.
    """
    extra = directory / "rules.yaml"
    ruleset = _ruleset(extra if extra.exists() else None)
    return OncePerRequest(Engine(ruleset, matching=Matching.ALL))


def fired(engine: OncePerRequest, lines: list[bytes]) -> list[str]:
    """The names of the rules that fired over the events, in order."""
    names = []
    for line in lines:
        for event in decode_document(line):
            names.extend(alert.rule for alert in engine.detect(EventContext(event, "", line)))
    return names
