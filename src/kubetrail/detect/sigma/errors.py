"""Errors of Sigma rule loading: which file, which rule (id or title) and what is wrong with it."""

from __future__ import annotations

from kubetrail.detect.errors import RuleLoadError


class SigmaRuleError(RuleLoadError):
    """A Sigma rule or correlation that cannot be used: bad YAML, a condition that does not parse, a bad modifier."""
