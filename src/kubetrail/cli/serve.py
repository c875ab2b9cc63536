"""`kubetrail serve`: receive kube-apiserver's audit webhook and tail its log files into a durable store."""

from __future__ import annotations

from typing import Any

import click

from kubetrail.logs import LEVELS
from kubetrail.serve.config import DEFAULT_LISTEN, build_config, load_config_file
from kubetrail.serve.server import run


@click.command(name="serve")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of these options.")
@click.option("--store", type=click.Path(file_okay=False), help="Store directory (created if missing).")
@click.option("--bus", metavar="URL[,URL…]", help="Publish to NATS JetStream instead of a local store (scale-out).")
@click.option("--bus-replicas", type=click.IntRange(1, 5), help="JetStream stream replicas  [default: 1]")
@click.option(
    "--bus-partitions",
    type=click.IntRange(1, 256),
    help="Partitions of the events by identity, the same on every receiver and worker  [default: 8]",
)
@click.option("--listen", metavar="HOST:PORT", help=f"Address to listen on  [default: {DEFAULT_LISTEN}]")
@click.option("--cluster", help="Cluster of /k8s-audit and of tailed files  [default: default]")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="The certificate's private key (PEM).")
@click.option("--client-ca", type=click.Path(dir_okay=False), help="Accept client certificates signed by this CA.")
@click.option(
    "--client-cert-cluster",
    "cert_clusters",
    multiple=True,
    metavar="CN=NAME:CLUSTER",
    help="Store events sent with this certificate subject (CN= or O=) under CLUSTER.",
)
@click.option("--token-file", type=click.Path(dir_okay=False), help="Bearer tokens: `TOKEN,CLUSTER` lines.")
@click.option("--ui/--no-ui", default=None, help="Serve the web UI under /ui/  [default: on]")
@click.option("--ui-port", type=click.IntRange(0, 65535), help="Serve the web UI on this port instead.")
@click.option("--ui-token-file", type=click.Path(dir_okay=False), help="UI bearer tokens: `TOKEN[,NAME]` lines.")
@click.option("--ui-users-file", type=click.Path(dir_okay=False), help="UI basic-auth users: `USER:PASSWORD` lines.")
@click.option("--ui-insecure", is_flag=True, default=None, help="Allow the UI without auth on a non-loopback address.")
@click.option("--tail", "tails", multiple=True, type=click.Path(dir_okay=False), help="Follow this audit log file.")
@click.option("--tail-cluster", "tail_clusters", multiple=True, help="Cluster of the --tail at the same position.")
@click.option("--tail-from", type=click.Choice(["start", "end"]), help="Where a never-tailed file starts.")
@click.option("--poll-interval", type=float, help="Seconds between looks at tailed files  [default: 0.25]")
@click.option(
    "--eks-log-group",
    multiple=True,
    metavar="LOG_GROUP",
    help="Pull an EKS cluster's audit log from CloudWatch Logs (/aws/eks/NAME/cluster; the `aws` extra).",
)
@click.option(
    "--firehose-access-key-file",
    type=click.Path(dir_okay=False),
    help="Take Amazon Data Firehose deliveries at /firehose/<cluster>: `KEY[,CLUSTER]` lines.",
)
@click.option(
    "--gke-subscription",
    multiple=True,
    metavar="projects/P/subscriptions/S",
    help="Pull a GKE cluster's audit log from a Cloud Logging sink's Pub/Sub subscription (the `gcp` extra).",
)
@click.option(
    "--pubsub-audience",
    multiple=True,
    metavar="URL",
    help="Take Pub/Sub pushes at /pubsub/<cluster> whose OIDC token has this audience (the `gcp` extra).",
)
@click.option("--pubsub-service-account", multiple=True, metavar="EMAIL", help="The account push tokens must name.")
@click.option("--pubsub-jwks", metavar="FILE|URL", help="Keys push tokens are checked against  [default: Google's]")
@click.option(
    "--aks-storage-account",
    multiple=True,
    metavar="URL",
    help="Read AKS audit blobs (insights-logs-kube-audit*) from this storage account (the `azure` extra).",
)
@click.option(
    "--aks-eventhub",
    multiple=True,
    metavar="NAMESPACE/EVENTHUB",
    help="Receive AKS audit records from this Event Hub (the `azure` extra).",
)
@click.option("--retention-days", type=int, help="Remove sealed partitions older than this.")
@click.option("--max-bytes", metavar="SIZE", help="Remove the oldest partitions beyond this size (e.g. 200GiB).")
@click.option("--max-body-size", metavar="SIZE", help="Largest request body, before and after gzip  [default: 12MiB]")
@click.option("--max-event-size", metavar="SIZE", help="Largest single event  [default: 256KiB]")
@click.option("--rules", multiple=True, metavar="FILE|DIR", help="Detection rules (repeatable)  [default: builtin]")
@click.option("--outputs", type=click.Path(dir_okay=False), help="Alert outputs file (docs/outputs.md).")
@click.option("--max-keys", type=click.IntRange(min=1), help="Keys each stateful rule keeps  [default: 100000]")
@click.option("--redact", is_flag=True, default=None, help="Replace secret values in events before storing them.")
@click.option("--log-level", type=click.Choice(LEVELS), help="[default: info]")
def serve_command(
    config_file: str | None,
    tails: tuple[str, ...],
    tail_clusters: tuple[str, ...],
    cert_clusters: tuple[str, ...],
    **flags: Any,
) -> None:
    """Receive audit events (webhook and log files) and store them durably.

    kube-apiserver's webhook backend POSTs to /audit/<cluster> (or /k8s-audit); an event is answered 200 only
    once it is fsynced in the write-ahead log, 503 when it cannot be (the apiserver retries). Log files
    given with --tail are followed across rotation and checkpointed. SIGTERM or Ctrl-C drains requests,
    seals the store to Parquet and exits 0. Every option can also be set in --config (same names).
    Detection rules (--rules; the built-in set by default) run on every acknowledged event; alerts go to the
    store's `alerts` view and to the --outputs (stdout, file, webhook, Slack, syslog, NATS).
    The read-only web UI is at /ui/ (or on --ui-port); beyond loopback it needs --ui-token-file or
    --ui-users-file (docs/ui.md).

    \b
    Examples:
      kubetrail serve --store /var/lib/kubetrail
      kubetrail serve --store ./data --listen 0.0.0.0:8443 --tls-cert server.pem --tls-key server-key.pem \\
          --client-ca apiserver-ca.pem --ui-token-file ui-tokens
      kubetrail serve --store ./data --tail /var/log/kubernetes/audit/audit.log --cluster prod
      kubetrail serve --store ./data --rules builtin --rules my-rules/ --outputs outputs.yaml
      kubetrail serve --store ./data --eks-log-group /aws/eks/prod/cluster   # docs/managed-clusters.md
      kubetrail serve --store ./data --gke-subscription projects/my-project/subscriptions/kubetrail-prod
      kubetrail serve --store ./data --aks-storage-account https://myaudit.blob.core.windows.net
      kubetrail apiserver-config --url https://kubetrail.internal:8443/audit/prod --ca ca.pem --token …
    """
    if len(tail_clusters) > len(tails):
        raise click.BadParameter("more --tail-cluster than --tail", param_hint="--tail-cluster")
    file_values = load_config_file(config_file) if config_file else {}
    options = {key.replace("_", "-"): value for key, value in flags.items()}
    if tails:
        options["tail"] = [
            {"path": path, "cluster": tail_clusters[index] if index < len(tail_clusters) else None}
            for index, path in enumerate(tails)
        ]
    if cert_clusters:
        pairs = [item.rpartition(":") for item in cert_clusters]
        if any(not subject or not cluster for subject, _, cluster in pairs):
            raise click.BadParameter(
                "expected SUBJECT:CLUSTER, e.g. CN=kube-apiserver:prod", param_hint="--client-cert-cluster"
            )
        options["client-cert-clusters"] = {subject: cluster for subject, _, cluster in pairs}
    config = build_config(file_values, options)
    summary = run(config, click.echo)
    if config.bus is not None:
        click.echo(f"kubetrail serve: stopped; {summary.sealed_rows:,} events published to the bus")
        return
    click.echo(
        f"kubetrail serve: stopped; {summary.sealed_rows:,} events in {summary.sealed_files} sealed files"
        + (f", {summary.tail_lines:,} lines tailed" if config.tails else "")
    )
