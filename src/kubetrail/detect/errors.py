"""Errors of the detection area: a rule file or condition that cannot be used, with where and how to fix it."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class DetectError(KubetrailError):
    """Base of detection errors; carries the rules file, line, column and the item concerned."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        line: int | None = None,
        column: int | None = None,
        item: str = "",
        hint: str = "",
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.item = item
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{self.item}: {self.message}" if self.item else self.message
        return f"{where}: {text}" if where else text


class RuleLoadError(DetectError):
    """A rules file that Falco would refuse: bad YAML shape, unknown reference, invalid override."""


class ConditionSyntaxError(RuleLoadError):
    """A condition or output that does not parse; says what was expected at the failing position."""


class RuleCompileError(RuleLoadError):
    """A condition that parses but cannot run: unknown field, macro or list, operator not valid for a field."""
