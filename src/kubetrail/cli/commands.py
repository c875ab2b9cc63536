"""The top-level sub-commands, loaded only when run: `kubetrail --help` imports none of them.

Each entry names the module and attribute of the click command and its one-line help (kept equal to the
command's own by a test), so that listing the commands costs nothing and a command's dependencies (DuckDB,
Starlette, the NATS client, …) load only when that command runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click


class CommandEntry(NamedTuple):
    """Where a top-level command lives, and its one-line help for `kubetrail --help`."""

    module: str
    attribute: str
    short_help: str


COMMANDS: dict[str, CommandEntry] = {
    "apiserver-config": CommandEntry(
        "kubetrail.cli.apiserver_config",
        "apiserver_config_command",
        "Print the kube-apiserver flags and the webhook kubeconfig that send audit events to `kubetrail serve`.",
    ),
    "check": CommandEntry(
        "kubetrail.cli.check", "check_group", "Check a cluster component's configuration for sound audit logging."
    ),
    "cloud-setup": CommandEntry(
        "kubetrail.cli.cloud_setup",
        "cloud_setup_group",
        "Print the cloud CLI commands that route a managed cluster's audit log to `kubetrail serve`.",
    ),
    "demo": CommandEntry(
        "kubetrail.cli.demo",
        "demo_command",
        "Run kubetrail on a generated cluster: serve, store, and what the audit policy records.",
    ),
    "detect": CommandEntry(
        "kubetrail.cli.detect", "detect_command", "Run detection rules over audit log FILES and print alerts."
    ),
    "generate": CommandEntry(
        "kubetrail.cli.generate",
        "generate_command",
        "Generate a realistic audit log of a small cluster as NDJSON (`audit.k8s.io/v1` events).",
    ),
    "ingest": CommandEntry(
        "kubetrail.cli.ingest",
        "ingest_command",
        "Load audit events from FILEs into the store; re-ingesting a file stores nothing twice.",
    ),
    "investigate": CommandEntry(
        "kubetrail.cli.investigate",
        "investigate_group",
        "Answer incident questions: who read secrets, what was forbidden, who exec'd, RBAC changes, …",
    ),
    "policy": CommandEntry(
        "kubetrail.cli.policy", "policy_group", "Work with kube-apiserver audit policies (audit.k8s.io/v1 Policy)."
    ),
    "query": CommandEntry(
        "kubetrail.cli.query",
        "query_command",
        "Print the events EXPR selects, from the store or (with --file) straight from log files.",
    ),
    "rbac": CommandEntry(
        "kubetrail.cli.rbac",
        "rbac_group",
        "RBAC from activity: roles granting exactly what was used, and granted permissions never used.",
    ),
    "report": CommandEntry(
        "kubetrail.cli.report",
        "report_group",
        "Reports for people outside the on-call rotation: compliance evidence for assessors.",
    ),
    "request-info": CommandEntry(
        "kubetrail.cli.request_info",
        "request_info_command",
        "Show the request attributes kube-apiserver derives from METHOD and URL.",
    ),
    "secrets": CommandEntry(
        "kubetrail.cli.secrets",
        "secrets_group",
        "Find secret material in audit logs, and write copies with it redacted.",
    ),
    "serve": CommandEntry(
        "kubetrail.cli.serve", "serve_command", "Receive audit events (webhook and log files) and store them durably."
    ),
    "verify": CommandEntry(
        "kubetrail.cli.verify", "verify_command", "Check every sealed segment against the hash-chained manifest."
    ),
    "worker": CommandEntry(
        "kubetrail.cli.worker",
        "worker_command",
        "Consume audit batches from NATS JetStream into this worker's part of the lake, detecting as they pass.",
    ),
}


def load_entry(entry: CommandEntry) -> click.Command:
    """Import the command an entry names."""
    command = getattr(importlib.import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command)
    return command


def load(name: str) -> click.Command:
    """Import one top-level command."""
    return load_entry(COMMANDS[name])


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported only when one runs (or its own help is asked for).

    `entries` maps each sub-command's name to where it lives and its one-line help, which the group's
    `--help` lists without importing anything.
    """

    def __init__(self, *args: Any, entries: Mapping[str, CommandEntry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entries = dict(entries)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.entries)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.entries.get(cmd_name)
        return None if entry is None else load_entry(entry)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, entry.short_help) for name, entry in sorted(self.entries.items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def all_commands() -> list[click.Command]:
    """Every top-level sub-command, imported (for tests and documentation)."""
    return [load(name) for name in COMMANDS]
