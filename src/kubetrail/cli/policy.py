"""`kubetrail policy …`: validate, explain, lint, simulate, diff and generate audit policies."""

from __future__ import annotations

import click


@click.group(name="policy")
def policy_group() -> None:
    """Work with kube-apiserver audit policies (audit.k8s.io/v1 Policy).

    \b
    Examples:
      kubetrail policy validate audit-policy.yaml
      kubetrail policy lint audit-policy.yaml -o json
      kubetrail policy explain audit-policy.yaml --user jane --verb get --resource secrets -n prod
    """


def _register() -> None:
    from kubetrail.cli import (
        policy_diff,
        policy_explain,
        policy_generate,
        policy_lint,
        policy_simulate,
        policy_validate,
    )

    policy_group.add_command(policy_validate.validate_command)
    policy_group.add_command(policy_lint.lint_command)
    policy_group.add_command(policy_explain.explain_command)
    policy_group.add_command(policy_simulate.simulate_command)
    policy_group.add_command(policy_diff.diff_command)
    policy_group.add_command(policy_generate.generate_command)


_register()
