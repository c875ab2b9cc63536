"""Errors of the compliance report: a period or option that cannot be used."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class ReportError(KubetrailError):
    """A report that cannot be produced as asked; `field` names the option at fault."""

    def __init__(self, message: str, *, field: str = "", hint: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.hint = hint
