"""docs/rules-builtin.md lists every built-in rule with the priority and IDs its rule file gives it."""

from __future__ import annotations

import re
from pathlib import Path

from kubetrail.detect import BUILTIN, load_ruleset, rule_sources
from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.stateful.spec import ValueCountSpec
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


# "Compared with public content": a summary table (5 columns) and one 3-column table per vendor sub-section.
COMPARISON = "## Compared with public content"
COVERAGE = {"covered": "Covered", "partly": "Partly covered", "not covered": "Not covered"}
RULE_NAME = re.compile(r"`([A-Z][^`]* [^`]*)`")


def _comparison() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(COMPARISON)
    end = text.find("\n## ", start + len(COMPARISON))
    return text[start : end if end != -1 else len(text)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _vendor_rows() -> dict[str, list[list[str]]]:
    rows: dict[str, list[list[str]]] = {}
    vendor = None
    for line in _comparison().splitlines():
        if line.startswith("### "):
            vendor = line[4:].strip()
            rows[vendor] = []
        elif vendor and line.startswith("|"):
            cells = _cells(line)
            if cells[0] not in ("Their rule", "---"):
                rows[vendor].append(cells)
    return rows


def test_comparison_rows_have_three_cells_and_a_known_coverage() -> None:
    rows = _vendor_rows()
    assert sorted(rows) == ["Elastic", "Falco", "Panther", "SigmaHQ"]
    for vendor, vendor_rows in rows.items():
        assert vendor_rows, vendor
        for cells in vendor_rows:
            assert len(cells) == 3, (vendor, cells)
            assert cells[1] in COVERAGE, (vendor, cells)
            assert cells[2], (vendor, cells)


def test_comparison_summary_counts_the_rows() -> None:
    summary = {}
    for line in _comparison().split("### ", 1)[0].splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) == 5 and cells[0] not in ("Vendor", "---"):
            summary[cells[0]] = [int(cell) for cell in cells[1:]]
    total = [0, 0, 0, 0]
    for vendor, vendor_rows in _vendor_rows().items():
        counts = [len(vendor_rows)] + [sum(row[1] == key for row in vendor_rows) for key in COVERAGE]
        assert summary[vendor] == counts, vendor
        total = [a + b for a, b in zip(total, counts, strict=True)]
    assert summary["Total"] == total
    sentence = " ".join(_comparison().split())
    detections, covered, partly, uncovered = total
    assert f"Of **{detections}** detections, the built-in set covers **{covered}**" in sentence
    assert f"covers **{partly}** in part" in sentence
    assert f"leaves **{uncovered}** uncovered" in sentence


def test_comparison_names_only_builtin_rules() -> None:
    names = {rule.name for rule in written_rules()}
    for vendor, vendor_rows in _vendor_rows().items():
        for cells in vendor_rows:
            for name in RULE_NAME.findall(cells[2]):
                assert name in names, (vendor, cells[0], name)


def test_the_tuning_example_loads_after_the_builtin_set() -> None:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("# tuning.yaml:")
    example = text[start : text.index("```", start)]
    ruleset = load_ruleset([*rule_sources([BUILTIN]), RuleSource("tuning.yaml", example)])
    discovery = next(spec for spec in ruleset.stateful if spec.name == "Discovery Across Many Resource Types")
    assert isinstance(discovery, ValueCountSpec)
    assert (discovery.count, discovery.window_s) == (3, 60.0)
