"""`kubetrail cloud-setup gke`: the `gcloud` commands that route a GKE cluster's audit log to `kubetrail serve`.

A Cloud Logging sink with the cluster's audit entries (SINK_FILTER) publishes to a Pub/Sub topic; the sink's
writer identity may publish there. Push (the default, `--url`): a push subscription to serve's
`/pubsub/<cluster>`, its OIDC token signed for a service account the Pub/Sub service agent may sign for, with
serve's URL as the audience. Pull (`--pull`): a pull subscription the account serve runs as may consume.
"""

from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

import click

from kubetrail.cli.cloud_setup import CloudSetupError, cloud_setup_group
from kubetrail.store import StoreError, check_cluster

ACK_DEADLINE = 60
"""Seconds Pub/Sub waits for an acknowledgement: long enough for a pull of 1000 entries to be fsynced."""
RETENTION = "7d"
"""How long Pub/Sub keeps what serve has not acknowledged (its maximum): a week of outage loses nothing."""
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_ACCOUNT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def sink_filter(cluster: str) -> str:
    """The Logging query: the cluster's Kubernetes audit entries, nothing else of the project."""
    return (
        'logName:"cloudaudit.googleapis.com" AND resource.type="k8s_cluster" '
        f'AND resource.labels.cluster_name="{cluster}"'
    )


def push_url(url: str, cluster: str) -> tuple[str, str]:
    """serve's push endpoint for the cluster and the token audience: (`https://HOST/pubsub/<cluster>`,
    `https://HOST/pubsub`). Pub/Sub pushes only to https."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CloudSetupError(f"{url!r} is not an https URL", field="--url", hint="Pub/Sub pushes only over https")
    path = parts.path.rstrip("/")
    if path.endswith(f"/pubsub/{cluster}"):
        path = path[: -len(f"/{cluster}")]
    elif not path.endswith("/pubsub"):
        path = f"{path}/pubsub"
    audience = f"https://{parts.netloc}{path}"
    return f"{audience}/{cluster}", audience


def _common(cluster: str, project: str, topic: str, sink: str) -> list[str]:
    q = shlex.quote
    return [
        "#!/bin/sh",
        f"# GKE cluster {cluster} → Cloud Logging sink {sink} → Pub/Sub topic {topic} → kubetrail serve",
        "set -eu",
        f"PROJECT={q(project)}",
        "",
        "# 1. the APIs this uses",
        'gcloud services enable logging.googleapis.com pubsub.googleapis.com --project "$PROJECT"',
        "",
        "# 2. the topic, and the sink routing the cluster's audit entries to it",
        f'gcloud pubsub topics create {q(topic)} --project "$PROJECT"',
        f'gcloud logging sinks create {q(sink)} "pubsub.googleapis.com/projects/$PROJECT/topics/{topic}" '
        f'--log-filter={q(sink_filter(cluster))} --project "$PROJECT"',
        f'WRITER=$(gcloud logging sinks describe {q(sink)} --project "$PROJECT" --format="value(writerIdentity)")',
        f'gcloud pubsub topics add-iam-policy-binding {q(topic)} --member="$WRITER" '
        '--role=roles/pubsub.publisher --project "$PROJECT"',
        "# reads (get, list, watch) are Data Access entries, which Google writes only when Data Access audit logs",
        "# are on for the Kubernetes Engine API (IAM & Admin → Audit Logs: Admin Read, Data Read, Data Write).",
        "",
    ]


def _account_lines(account: str, purpose: str) -> list[str]:
    q = shlex.quote
    name = account.split("@", 1)[0]
    return [
        f'ACCOUNT="{name}@$PROJECT.iam.gserviceaccount.com"',
        f'gcloud iam service-accounts describe "$ACCOUNT" --project "$PROJECT" >/dev/null 2>&1 || '
        f"gcloud iam service-accounts create {q(name)} --display-name={q(purpose)} "
        '--project "$PROJECT"',
    ]


def gke_push_script(cluster: str, project: str, url: str, *, account: str, topic: str, sink: str) -> str:
    """The script: sink → topic → push subscription with an OIDC token for `account`, audience serve's URL."""
    endpoint, audience = push_url(url, cluster)
    subscription = f"kubetrail-{cluster}"
    q = shlex.quote
    lines = [
        *_common(cluster, project, topic, sink),
        "# 3. the service account whose OIDC token Pub/Sub sends, and the Pub/Sub service agent's right to sign it",
        *_account_lines(account, "kubetrail Pub/Sub push"),
        'NUMBER=$(gcloud projects describe "$PROJECT" --format="value(projectNumber)")',
        'gcloud iam service-accounts add-iam-policy-binding "$ACCOUNT" '
        '--member="serviceAccount:service-$NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com" '
        '--role=roles/iam.serviceAccountTokenCreator --project "$PROJECT"',
        "",
        "# 4. the push subscription: serve acknowledges (200) only what it has stored durably",
        f"gcloud pubsub subscriptions create {q(subscription)} --topic={q(topic)} "
        f"--push-endpoint={q(endpoint)} "
        f'--push-auth-service-account="$ACCOUNT" --push-auth-token-audience={q(audience)} '
        f"--ack-deadline={ACK_DEADLINE} --message-retention-duration={RETENTION} "
        '--min-retry-delay=10s --max-retry-delay=600s --project "$PROJECT"',
        "",
        "# then serve (docs/managed-clusters.md), with TLS on a certificate Google trusts:",
        f'echo "kubetrail serve … --pubsub-audience {audience} --pubsub-service-account $ACCOUNT"',
    ]
    return "\n".join(lines) + "\n"


def gke_pull_script(cluster: str, project: str, *, account: str, topic: str, sink: str) -> str:
    """The script: sink → topic → pull subscription that the account serve runs as may consume."""
    subscription = f"kubetrail-{cluster}"
    q = shlex.quote
    lines = [
        *_common(cluster, project, topic, sink),
        "# 3. the pull subscription, and the account serve runs as (Workload Identity, or a key) may consume it",
        f"gcloud pubsub subscriptions create {q(subscription)} --topic={q(topic)} "
        f"--ack-deadline={ACK_DEADLINE} --message-retention-duration={RETENTION} "
        '--expiration-period=never --project "$PROJECT"',
        *_account_lines(account, "kubetrail reader"),
        f'gcloud pubsub subscriptions add-iam-policy-binding {q(subscription)} --member="serviceAccount:$ACCOUNT" '
        '--role=roles/pubsub.subscriber --project "$PROJECT"',
        "",
        "# 4. serve's config (docs/managed-clusters.md):",
        "#   sources:",
        f"#     - {{type: gke-pubsub, cluster: {cluster},",
        f"#        subscription: projects/{project}/subscriptions/{subscription}}}",
    ]
    return "\n".join(lines) + "\n"


@cloud_setup_group.command(name="gke")
@click.option("--cluster", required=True, help="The GKE cluster's name (also its kubetrail cluster label).")
@click.option("--project", required=True, envvar="CLOUDSDK_CORE_PROJECT", help="Its Google Cloud project.")
@click.option("--url", help="serve's https URL as Pub/Sub reaches it (push; /pubsub/<cluster> is added).")
@click.option("--pull", is_flag=True, help="Print the pull setup (serve pulls a subscription) instead.")
@click.option(
    "--service-account",
    "account",
    help="Push: the account tokens are signed for; pull: the one serve runs as  [default: kubetrail-push, "
    "kubetrail-reader]",
)
@click.option("--topic", help="The Pub/Sub topic  [default: kubetrail-audit-<cluster>]")
def gke_command(
    cluster: str, project: str, url: str | None, pull: bool, account: str | None, topic: str | None
) -> None:
    """Print the `gcloud` commands that send a GKE cluster's audit log to `kubetrail serve`.

    A Cloud Logging sink routes the cluster's audit entries to a Pub/Sub topic. Push (--url): a push
    subscription POSTs each entry to serve's /pubsub/<cluster> with an OIDC token serve verifies. Pull
    (--pull): serve pulls a subscription. Nothing is run: read the script, then run it.

    \b
    Examples:
      kubetrail cloud-setup gke --cluster prod --project my-project --url https://kubetrail.example.com > setup.sh
      kubetrail cloud-setup gke --cluster prod --project my-project --pull
    """
    try:
        check_cluster(cluster)
    except StoreError as error:
        raise CloudSetupError(error.message, field="--cluster", hint=error.hint) from None
    if not _PROJECT.match(project):
        raise CloudSetupError(f"{project!r} is not a project id", field="--project", hint="e.g. my-project-123")
    chosen = account or ("kubetrail-reader" if pull else "kubetrail-push")
    if not _ACCOUNT.match(chosen.split("@", 1)[0]):
        raise CloudSetupError(
            f"{chosen!r} is not a service account name (6-30 of a-z, 0-9, -)", field="--service-account"
        )
    topic = topic or f"kubetrail-audit-{cluster}"
    sink = f"kubetrail-{cluster}"
    if pull:
        click.echo(gke_pull_script(cluster, project, account=chosen, topic=topic, sink=sink), nl=False)
        return
    if url is None:
        raise CloudSetupError("the push setup needs serve's URL", field="--url", hint="or pass --pull")
    click.echo(gke_push_script(cluster, project, url, account=chosen, topic=topic, sink=sink), nl=False)
