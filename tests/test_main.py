"""`python -m kubetrail` is the `kubetrail` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

KUBETRAIL = Path(sys.executable).with_name("kubetrail")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["request-info", "PUT", "/api/v1/namespaces/a/pods/b"]])
def test_python_m_kubetrail_behaves_like_the_command(args: list[str]) -> None:
    module = subprocess.run([sys.executable, "-m", "kubetrail", *args], capture_output=True, text=True, timeout=60)
    command = subprocess.run([str(KUBETRAIL), *args], capture_output=True, text=True, timeout=60)
    assert module.returncode == command.returncode == 0, module.stderr
    assert module.stdout == command.stdout
    assert module.stdout


def test_errors_exit_as_the_command_does() -> None:
    module = subprocess.run([sys.executable, "-m", "kubetrail", "no-such-command"], capture_output=True, text=True)
    assert module.returncode == 2 and "Usage: kubetrail" in module.stderr
