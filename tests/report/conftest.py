"""A store holding five generated days (2026-03-15 to 2026-03-19) with every attack scenario, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.helpers import Expected, expected_from, generate, ingest

FIVE_DAYS = 5 * 86400


@pytest.fixture(scope="session")
def five_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    root = tmp_path_factory.mktemp("five-days")
    log = generate(root / "audit.log", start="2026-03-15T00:00:00Z", seconds=FIVE_DAYS, rate=0.01)
    return ingest(root / "store", log), expected_from(log)
