"""`kubetrail cloud-setup aks`: the `az` commands that route an AKS cluster's audit log to `kubetrail serve`.

A diagnostic setting on the cluster sends category `kube-audit` (every request) or `kube-audit-admin` (without
get and list) to a storage account (the default: hourly blobs the `aks-storage` source reads) or to an Event Hub
(`--eventhub-namespace`: the `aks-eventhub` source), with what serve needs to read it: the Storage Blob Data
Reader role for the identity serve runs as, or a Listen-only access policy on the Event Hub.
"""

from __future__ import annotations

import json
import re
import shlex

import click

from kubetrail.cli.cloud_setup import CloudSetupError, cloud_setup_group
from kubetrail.store import StoreError, check_cluster

PARTITIONS = 4
_STORAGE = re.compile(r"^[a-z0-9]{3,24}$")
_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{4,48}[A-Za-z0-9]$")


def logs_setting(category: str) -> str:
    """The diagnostic setting's `--logs` JSON: the one audit category."""
    return json.dumps([{"category": category, "enabled": True}], separators=(",", ":"))


def _common(cluster: str, group: str, target: str) -> list[str]:
    q = shlex.quote
    return [
        "#!/bin/sh",
        f"# AKS cluster {cluster} → diagnostic setting → {target} → kubetrail serve",
        "set -eu",
        f"GROUP={q(group)}",
        f'CLUSTER_ID=$(az aks show --resource-group "$GROUP" --name {q(cluster)} --query id --output tsv)',
        "",
    ]


def aks_storage_script(cluster: str, group: str, *, account: str, category: str, reader: str | None) -> str:
    """The script: a storage account, the diagnostic setting archiving to it, read access for serve."""
    q = shlex.quote
    lines = [
        *_common(cluster, group, f"storage account {account}"),
        "# 1. the storage account (private, TLS 1.2)",
        f'az storage account create --name {q(account)} --resource-group "$GROUP" --sku Standard_LRS '
        "--kind StorageV2 --min-tls-version TLS1_2 --allow-blob-public-access false",
        f'STORAGE_ID=$(az storage account show --name {q(account)} --resource-group "$GROUP" --query id --output tsv)',
        "",
        f"# 2. the diagnostic setting: {category} into hourly blobs (container insights-logs-{category})",
        'az monitor diagnostic-settings create --name kubetrail --resource "$CLUSTER_ID" '
        f'--storage-account "$STORAGE_ID" --logs {q(logs_setting(category))}',
        "",
    ]
    if reader:
        lines += [
            "# 3. read access for the identity serve runs as (DefaultAzureCredential: workload or managed identity)",
            f'az role assignment create --assignee {q(reader)} --role "Storage Blob Data Reader" --scope "$STORAGE_ID"',
        ]
    else:
        lines += [
            "# 3. serve reads with DefaultAzureCredential: give the identity it runs as the Storage Blob Data",
            "#    Reader role on $STORAGE_ID (--reader), or a connection string in AZURE_STORAGE_CONNECTION_STRING:",
            f"#    az storage account show-connection-string --name {account} --resource-group $GROUP",
        ]
    lines += [
        "",
        "# 4. serve's config (docs/managed-clusters.md):",
        "#   sources:",
        f"#     - {{type: aks-storage, cluster: {cluster}, account-url: https://{account}.blob.core.windows.net}}",
    ]
    return "\n".join(lines) + "\n"


def aks_eventhub_script(cluster: str, group: str, *, namespace: str, category: str, secret_file: str) -> str:
    """The script: an Event Hub, the diagnostic setting streaming to it, a Listen-only policy for serve."""
    hub = f"kubetrail-{cluster}"
    q = shlex.quote
    lines = [
        *_common(cluster, group, f"Event Hub {namespace}/{hub}"),
        "# 1. the namespace, the event hub and serve's consumer group",
        f'az eventhubs namespace create --name {q(namespace)} --resource-group "$GROUP" --sku Standard',
        f'az eventhubs eventhub create --name {q(hub)} --namespace-name {q(namespace)} --resource-group "$GROUP" '
        f"--partition-count {PARTITIONS}",
        f"az eventhubs eventhub consumer-group create --name kubetrail --eventhub-name {q(hub)} "
        f'--namespace-name {q(namespace)} --resource-group "$GROUP"',
        f"RULE_ID=$(az eventhubs namespace authorization-rule show --name RootManageSharedAccessKey "
        f'--namespace-name {q(namespace)} --resource-group "$GROUP" --query id --output tsv)',
        "",
        f"# 2. the diagnostic setting: {category} streamed to the event hub",
        'az monitor diagnostic-settings create --name kubetrail --resource "$CLUSTER_ID" '
        f'--event-hub {q(hub)} --event-hub-rule "$RULE_ID" --logs {q(logs_setting(category))}',
        "",
        "# 3. a Listen-only policy for serve, its connection string into a file only you can read",
        f"az eventhubs eventhub authorization-rule create --name kubetrail-listen --eventhub-name {q(hub)} "
        f'--namespace-name {q(namespace)} --resource-group "$GROUP" --rights Listen',
        f"umask 077; az eventhubs eventhub authorization-rule keys list --name kubetrail-listen "
        f'--eventhub-name {q(hub)} --namespace-name {q(namespace)} --resource-group "$GROUP" '
        f"--query primaryConnectionString --output tsv > {q(secret_file)}",
        "",
        "# 4. serve's config (docs/managed-clusters.md), with the connection string in its environment:",
        f'#   export AKS_EVENTHUB_CONNECTION="$(cat {secret_file})"',
        "#   sources:",
        f"#     - {{type: aks-eventhub, cluster: {cluster}, eventhub: {hub}, consumer-group: kubetrail, "
        "connection-string-env: AKS_EVENTHUB_CONNECTION}",
    ]
    return "\n".join(lines) + "\n"


@cloud_setup_group.command(name="aks")
@click.option("--cluster", required=True, help="The AKS cluster's name (also its kubetrail cluster label).")
@click.option("--resource-group", "group", required=True, help="The cluster's resource group.")
@click.option("--storage-account", "account", help="Archive to this storage account (3-24 of a-z, 0-9).")
@click.option("--eventhub-namespace", "namespace", help="Stream to an event hub in this namespace instead.")
@click.option("--admin-only", is_flag=True, help="kube-audit-admin (no get/list: smaller, cheaper) not kube-audit.")
@click.option("--reader", help="Storage: the identity serve runs as (object id or name), given read access.")
@click.option(
    "--secret-file", default="eventhub-connection", show_default=True, help="Event Hub: where the key is written."
)
def aks_command(
    cluster: str,
    group: str,
    account: str | None,
    namespace: str | None,
    admin_only: bool,
    reader: str | None,
    secret_file: str,
) -> None:
    """Print the `az` commands that send an AKS cluster's audit log to `kubetrail serve`.

    A diagnostic setting sends the kube-audit category (or kube-audit-admin) to a storage account, whose
    hourly blobs serve reads (--storage-account), or to an event hub serve receives from
    (--eventhub-namespace). Nothing is run: read the script, then run it with `az login` done.

    \b
    Examples:
      kubetrail cloud-setup aks --cluster prod --resource-group rg-prod --storage-account prodaudit
      kubetrail cloud-setup aks --cluster prod --resource-group rg-prod --eventhub-namespace prod-audit-hubs
    """
    try:
        check_cluster(cluster)
    except StoreError as error:
        raise CloudSetupError(error.message, field="--cluster", hint=error.hint) from None
    category = "kube-audit-admin" if admin_only else "kube-audit"
    if (account is None) == (namespace is None):
        raise CloudSetupError(
            "give one of --storage-account and --eventhub-namespace", field="--storage-account", hint="see --help"
        )
    if namespace is not None:
        if not _NAMESPACE.match(namespace):
            raise CloudSetupError(
                f"{namespace!r} is not an Event Hubs namespace name (6-50)", field="--eventhub-namespace"
            )
        script = aks_eventhub_script(cluster, group, namespace=namespace, category=category, secret_file=secret_file)
        click.echo(script, nl=False)
        return
    assert account is not None
    if not _STORAGE.match(account):
        raise CloudSetupError(
            f"{account!r} is not a storage account name (3-24 of a-z, 0-9)", field="--storage-account"
        )
    click.echo(aks_storage_script(cluster, group, account=account, category=category, reader=reader), nl=False)
