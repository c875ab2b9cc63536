"""Audit policies shipped with kubetrail, loaded and validated exactly like a user's policy file."""

from __future__ import annotations

from importlib import resources

from kubetrail.policy.issues import PolicyError, PolicyIssue, Severity
from kubetrail.policy.load import LoadedPolicy, load_policy_bytes

PRESETS: tuple[str, ...] = ("minimal", "recommended", "cis", "paranoid")


def preset_text(name: str = "recommended") -> bytes:
    """The YAML of a shipped policy (e.g. to print or copy it)."""
    if name not in PRESETS:
        issue = PolicyIssue(
            severity=Severity.ERROR,
            field="preset",
            message=f"unknown preset policy {name!r}",
            source="<preset>",
            line=None,
            hint=f"choose from: {', '.join(PRESETS)}",
            code="load",
        )
        raise PolicyError(issues=[issue])
    return resources.files(__package__).joinpath(f"{name}.yaml").read_bytes()


def load_preset(name: str = "recommended") -> LoadedPolicy:
    """Load a shipped policy through the same loader and validation as any policy file."""
    return load_policy_bytes(preset_text(name), source=f"<preset {name}>")
