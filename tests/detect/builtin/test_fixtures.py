"""Every built-in rule fires on its positive fixtures and stays quiet on its negative ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detect.builtin.helpers import FIXTURES, engine_for, fired, load_events, slug, written_rules

RULES = written_rules()
CASES = [
    pytest.param(rule.name, path, id=f"{slug(rule.name)}/{path.stem}")
    for rule in RULES
    for path in sorted((FIXTURES / slug(rule.name)).glob("*.json"))
]


def test_the_builtin_set_has_rules() -> None:
    assert len(RULES) >= 41


@pytest.mark.parametrize("name", [rule.name for rule in RULES])
def test_every_rule_has_positive_and_negative_fixtures(name: str) -> None:
    directory = FIXTURES / slug(name)
    assert sorted(directory.glob("positive*.json")), f"{name}: no positive fixture in {directory}"
    assert sorted(directory.glob("negative*.json")), f"{name}: no negative fixture in {directory}"


def test_every_fixture_directory_names_a_rule() -> None:
    known = {slug(rule.name) for rule in RULES}
    strays = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir() and path.name not in known)
    assert strays == []


@pytest.mark.parametrize(("name", "path"), CASES)
def test_fixture(name: str, path: Path) -> None:
    names = fired(engine_for(path.parent), load_events(path))
    if path.name.startswith("positive"):
        assert name in names, f"{name} did not fire on {path.name} (fired: {names})"
    else:
        assert name not in names, f"{name} fired on {path.name}"


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_every_rule_is_documented_with_ids(rule: object) -> None:
    item = rule.item  # type: ignore[attr-defined]
    assert item.get("desc") and item.get("priority") and item.get("tags")
    assert isinstance(item.get("mitre"), list) and isinstance(item.get("threat_matrix"), list)
    assert item["mitre"] or item["threat_matrix"] or item["themes"] in ([4], [16], [40], [41])
    assert all(str(technique).startswith("T") for technique in item["mitre"])
    assert all(str(technique).startswith("MS-TA") for technique in item["threat_matrix"])
    assert item.get("themes"), f"{rule.name} maps to no theme"  # type: ignore[attr-defined]
