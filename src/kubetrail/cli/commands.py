"""The list of top-level sub-commands; each area contributes its own click command or group."""

from __future__ import annotations

import importlib

import click

# (module, attribute) of every top-level command, in the order `kubetrail --help` lists them.
COMMANDS: list[tuple[str, str]] = [
    ("kubetrail.cli.apiserver_config", "apiserver_config_command"),
    ("kubetrail.cli.check", "check_group"),
    ("kubetrail.cli.demo", "demo_command"),
    ("kubetrail.cli.detect", "detect_command"),
    ("kubetrail.cli.generate", "generate_command"),
    ("kubetrail.cli.ingest", "ingest_command"),
    ("kubetrail.cli.investigate", "investigate_group"),
    ("kubetrail.cli.policy", "policy_group"),
    ("kubetrail.cli.query", "query_command"),
    ("kubetrail.cli.rbac", "rbac_group"),
    ("kubetrail.cli.report", "report_group"),
    ("kubetrail.cli.request_info", "request_info_command"),
    ("kubetrail.cli.secrets", "secrets_group"),
    ("kubetrail.cli.serve", "serve_command"),
    ("kubetrail.cli.verify", "verify_command"),
    ("kubetrail.cli.worker", "worker_command"),
]


def all_commands() -> list[click.Command]:
    """Every top-level sub-command."""
    commands: list[click.Command] = []
    for module_name, attribute in COMMANDS:
        module = importlib.import_module(module_name)
        commands.append(getattr(module, attribute))
    return commands
