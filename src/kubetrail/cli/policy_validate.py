"""`kubetrail policy validate FILE`: accept or refuse a policy exactly as kube-apiserver would."""

from __future__ import annotations

import sys

import click

from kubetrail.policy import PolicyError, load_policy


@click.command(name="validate")
@click.argument("policy_file", type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; report through the exit code only.")
def validate_command(policy_file: str, quiet: bool) -> None:
    """Validate POLICY_FILE as kube-apiserver loads it: prints `valid` or every error.

    Exit code 0 when the apiserver would accept the policy, 1 when it would refuse it.
    Unknown fields are accepted with a warning (the apiserver ignores them).

    \b
    Example:
      kubetrail policy validate /etc/kubernetes/audit-policy.yaml
    """
    try:
        loaded = load_policy(policy_file)
    except PolicyError as error:
        if not quiet:
            for issue in error.issues:
                click.echo(f"{issue}", err=False)
                if issue.hint:
                    click.echo(f"  hint: {issue.hint}")
        sys.exit(1)
    if not quiet:
        for warning in loaded.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo("valid")
