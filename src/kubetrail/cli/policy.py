"""`kubetrail policy …`: validate, explain, lint, simulate, diff and generate audit policies.

The sub-commands load only when run: `kubetrail policy validate` imports the loader and validator, not the
simulator, the coverage analysis or the detection rules that `simulate` and `diff` need.
"""

from __future__ import annotations

import click

from kubetrail.cli.commands import CommandEntry, LazyGroup

POLICY_COMMANDS: dict[str, CommandEntry] = {
    "diff": CommandEntry(
        "kubetrail.cli.policy_diff", "diff_command", "Compare POLICY_A and POLICY_B on the same recorded events."
    ),
    "explain": CommandEntry(
        "kubetrail.cli.policy_explain",
        "explain_command",
        "Explain the level POLICY_FILE gives a request: omitted stages, managed fields, the rule and why.",
    ),
    "generate": CommandEntry(
        "kubetrail.cli.policy_generate", "generate_command", "Print a commented audit policy built from a preset."
    ),
    "lint": CommandEntry(
        "kubetrail.cli.policy_lint",
        "lint_command",
        "Lint POLICY_FILE: Secret bodies leaked, noise kept, rules shadowed or misnamed, exec unrecorded.",
    ),
    "simulate": CommandEntry(
        "kubetrail.cli.policy_simulate",
        "simulate_command",
        "Replay recorded events through POLICY_FILE as kube-apiserver would record them.",
    ),
    "validate": CommandEntry(
        "kubetrail.cli.policy_validate",
        "validate_command",
        "Validate POLICY_FILE as kube-apiserver loads it: prints `valid` or every error.",
    ),
}


@click.group(name="policy", cls=LazyGroup, entries=POLICY_COMMANDS)
def policy_group() -> None:
    """Work with kube-apiserver audit policies (audit.k8s.io/v1 Policy).

    \b
    Examples:
      kubetrail policy validate audit-policy.yaml
      kubetrail policy lint audit-policy.yaml -o json
      kubetrail policy explain audit-policy.yaml --user jane --verb get --resource secrets -n prod
    """
