"""Errors of the secret scanner: inputs it cannot read or write."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class SecretsError(KubetrailError):
    """An input or output of `kubetrail secrets` that cannot be used; names the file (and line)."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None, hint: str = "") -> None:
        self.message = message
        self.source = source
        self.line = line
        self.hint = hint
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
