"""The root of kubetrail's error types: every area's errors derive from it.

The command line prints these as one clear line (a traceback only with `--debug`).
"""

from __future__ import annotations


class KubetrailError(Exception):
    """An error a user can act on: says what is wrong, where, and how to fix it."""

    hint: str = ""


class SettingError(KubetrailError):
    """A configuration value that cannot be used: names the file and key (or flag) and how to fix it."""

    def __init__(self, message: str, *, file: str = "", field: str = "", hint: str = "") -> None:
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)
