"""docs/rules-builtin.md lists every built-in rule with the priority and IDs its rule file gives it."""

from __future__ import annotations

from pathlib import Path

from tests.detect.builtin.helpers import written_rules

DOC = Path(__file__).resolve().parents[3] / "docs" / "rules-builtin.md"
KINDS = {"threshold": "threshold", "first_seen": "first-seen", "sequence": "sequence"}


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] not in ("Rule", "---"):
            rows[cells[0]] = cells
    return rows


def _ids(cell: str) -> list[str]:
    return [] if cell == "—" else [part.strip() for part in cell.split(",")]


def test_the_table_lists_exactly_the_rules() -> None:
    assert sorted(_rows()) == sorted(rule.name for rule in written_rules())


def test_each_row_matches_its_rule_file() -> None:
    rows = _rows()
    for rule in written_rules():
        name, priority, themes, mitre, matrix, kind, _needs, file = rows[rule.name]
        item = rule.item
        assert priority == item["priority"], name
        assert [int(theme) for theme in _ids(themes)] == rule.themes, name
        assert _ids(mitre) == item["mitre"], name
        assert _ids(matrix) == item["threat_matrix"], name
        expected_kind = next((label for key, label in KINDS.items() if key in item), "event")
        assert kind == expected_kind, name
        assert file == f"`{rule.file}`", name
