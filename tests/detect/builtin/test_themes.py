"""Every theme of the detection catalogue (../shared/DETECTIONS.md) is covered by at least one built-in rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.detect.builtin.helpers import written_rules

CATALOGUE = Path(__file__).resolve().parents[4] / "shared" / "DETECTIONS.md"
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|")


def catalogue_themes() -> dict[int, str]:
    if not CATALOGUE.exists():
        pytest.skip(f"{CATALOGUE} is absent")
    themes = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            themes[int(match.group(1))] = match.group(2)
    return themes


def test_every_catalogue_theme_has_a_rule() -> None:
    themes = catalogue_themes()
    assert len(themes) == 41
    covered = {theme for rule in written_rules() for theme in rule.themes}
    missing = {number: title for number, title in themes.items() if number not in covered}
    assert missing == {}


def test_rules_only_name_catalogue_themes() -> None:
    themes = catalogue_themes()
    strays = {rule.name: rule.themes for rule in written_rules() if not set(rule.themes) <= set(themes)}
    assert strays == {}


def test_themes_needing_state_are_covered_by_stateful_rules() -> None:
    # The catalogue marks these as threshold, first-seen or sequence themes.
    stateful = {theme for rule in written_rules() if rule.file == "stateful.yaml" for theme in rule.themes}
    assert {13, 27, 29, 30, 41} <= stateful
