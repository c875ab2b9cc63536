"""Findings about a policy file: load warnings, validation errors and lint findings share one shape."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kubetrail.errors import KubetrailError


class Severity(enum.StrEnum):
    """How serious a finding is; errors make the apiserver refuse the policy."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class PolicyIssue:
    """One finding: where (file, line, field path), what is wrong, and how to fix it."""

    severity: Severity
    field: str
    message: str
    source: str = "<policy>"
    line: int | None = None
    hint: str = ""
    rule: int | None = None
    code: str = ""

    @property
    def location(self) -> str:
        """`file:line` (or just the file when the line is unknown)."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def __str__(self) -> str:
        text = f"{self.location}: {self.field}: {self.message}" if self.field else f"{self.location}: {self.message}"
        return text


@dataclass
class PolicyError(KubetrailError):
    """A policy the apiserver would refuse to load; carries every issue found."""

    issues: list[PolicyIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        first = self.issues[0] if self.issues else None
        self.hint = first.hint if first is not None else ""
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)
