"""Entry point of the `kubetrail` command: registers every area's sub-commands."""

from __future__ import annotations

import sys
from typing import Any

import click

from kubetrail import __version__
from kubetrail.cli import commands
from kubetrail.errors import KubetrailError


class KubetrailGroup(commands.LazyGroup):
    """A click group that prints kubetrail errors as one line (a traceback only under --debug) and imports a
    sub-command only when it runs."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KubetrailError as error:
            if ctx.meta.get("kubetrail.debug"):
                raise
            message = f"error: {error}"
            if error.hint:
                message += f"\n  hint: {error.hint}"
            click.echo(message, err=True)
            sys.exit(2)
        except BrokenPipeError:
            _silence_closed_stdout()
            sys.exit(0)
        except OSError as error:
            if ctx.meta.get("kubetrail.debug"):
                raise
            click.echo(f"error: {error}", err=True)
            sys.exit(2)


def _silence_closed_stdout() -> None:
    """The reader of our output went away (e.g. `| head`): stop quietly, as Unix tools do."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


@click.group(cls=KubetrailGroup, entries=commands.COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubetrail")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """kubetrail — Kubernetes audit logging: policy, emit, collect, detect, store, query, report.

    \b
    Examples:
      kubetrail demo
      kubetrail policy validate audit-policy.yaml
      kubetrail policy explain audit-policy.yaml --user jane --verb get --resource secrets
    """
    ctx.meta["kubetrail.debug"] = debug


def main() -> None:
    """Run the `kubetrail` command."""
    cli(prog_name="kubetrail")


if __name__ == "__main__":
    main()
