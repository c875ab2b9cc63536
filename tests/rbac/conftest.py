"""A generated audit log shared by the RBAC tests (written once per session by the real `kubetrail generate`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli


@pytest.fixture(scope="session")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbac") / "audit.log"
    command = ["generate", "--duration", "120", "--seed", "3", "--scenario", "all", "-o", str(path)]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    return path
