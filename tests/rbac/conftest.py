"""A generated audit log shared by the RBAC tests (written once per session by the real `kubetrail generate`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbac") / "audit.log"
    command = ["generate", "--duration", "120", "--seed", "3", "--scenario", "all", "-o", str(path)]
    subprocess.run([sys.executable, "-m", "kubetrail.cli.main", *command], check=True, capture_output=True)
    return path
