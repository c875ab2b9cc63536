"""`kubetrail cloud-setup`: the cloud CLI commands that route a managed cluster's audit log to `kubetrail serve`.

Printed as a shell script to read, adjust and run (nothing is run here), as `apiserver-config` prints the flags
of a self-managed apiserver; GKE's and AKS's are in cloud_setup_gke.py and cloud_setup_aks.py. EKS, push (the
default): the cluster's audit log type switched on, an S3 bucket for what Firehose cannot deliver, a Firehose
stream whose HTTP endpoint destination is serve's `/firehose/<cluster>` with a generated access key, and a
CloudWatch Logs subscription filter feeding it. EKS, pull (`--pull`): the audit log switched on and an IAM
policy allowing exactly what the `eks-cloudwatch` source calls (DescribeLogStreams, GetLogEvents, and
FilterLogEvents for looking around), for the role serve runs as.
"""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import urlsplit

import click

from kubetrail.errors import KubetrailError
from kubetrail.store import StoreError, check_cluster

AUDIT_FILTER = '{ $.kind = "Event" }'
"""Only the API server's audit events (the log group also holds the authenticator's and others' lines)."""


class CloudSetupError(KubetrailError):
    """Options that cannot make a working setup."""

    def __init__(self, message: str, *, field: str = "", hint: str = "") -> None:
        self.hint = hint
        super().__init__(f"{field}: {message}" if field else message)


def _json(document: object) -> str:
    return json.dumps(document, indent=2)


def firehose_url(url: str, cluster: str) -> str:
    """serve's Firehose route for the cluster: `https://HOST/firehose/<cluster>` (Firehose sends only to 443)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise CloudSetupError(f"{url!r} is not an https URL", field="--url", hint="Firehose delivers only over https")
    if parts.port not in (None, 443):
        raise CloudSetupError(
            "Firehose delivers only to port 443", field="--url", hint="serve on 443, or behind a load balancer on it"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(f"/firehose/{cluster}"):
        path = f"{path}/firehose/{cluster}"
    return f"https://{parts.netloc}{path}"


def _account_lines(account: str | None) -> list[str]:
    if account:
        return [f"ACCOUNT={shlex.quote(account)}"]
    return ["ACCOUNT=$(aws sts get-caller-identity --query Account --output text)"]


def eks_push_script(cluster: str, region: str, url: str, *, account: str | None, key_file: str, bucket: str) -> str:
    """The script: CloudWatch Logs subscription filter → Firehose (HTTP endpoint, access key) → serve."""
    endpoint = firehose_url(url, cluster)
    stream = f"kubetrail-{cluster}"
    firehose_role, logs_role = f"kubetrail-firehose-{cluster}", f"kubetrail-cwlogs-{cluster}"
    group = f"/aws/eks/{cluster}/cluster"
    trust_firehose = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    trust_logs = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringLike": {"aws:SourceArn": f"arn:aws:logs:{region}:$ACCOUNT:*"}},
            }
        ],
    }
    backup = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    put = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                "Resource": f"arn:aws:firehose:{region}:$ACCOUNT:deliverystream/{stream}",
            }
        ],
    }
    destination = {
        "EndpointConfiguration": {"Url": endpoint, "Name": "kubetrail", "AccessKey": "$KEY"},
        "RequestConfiguration": {"ContentEncoding": "GZIP"},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        "RetryOptions": {"DurationInSeconds": 7200},
        "RoleARN": f"arn:aws:iam::$ACCOUNT:role/{firehose_role}",
        "S3BackupMode": "FailedDataOnly",
        "S3Configuration": {
            "RoleARN": f"arn:aws:iam::$ACCOUNT:role/{firehose_role}",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": f"kubetrail-failed/{cluster}/",
            "CompressionFormat": "UNCOMPRESSED",
        },
    }
    constraint = json.dumps({"LocationConstraint": region}, separators=(",", ":"))
    location = "" if region == "us-east-1" else f" --create-bucket-configuration {shlex.quote(constraint)}"
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# EKS cluster {cluster} → CloudWatch Logs → Amazon Data Firehose → kubetrail serve at {endpoint}",
        "set -eu",
        f"REGION={q(region)}",
        *_account_lines(account),
        "",
        "# 1. the access key Firehose sends, which serve checks (`--firehose-access-key-file`, or `firehose:`)",
        f"umask 077; KEY=$(openssl rand -hex 32); printf '%s,%s\\n' \"$KEY\" {q(cluster)} > {q(key_file)}",
        "",
        "# 2. the API server's audit log, into the cluster's log group",
        f'aws eks update-cluster-config --region "$REGION" --name {q(cluster)} '
        '--logging \'{"clusterLogging":[{"types":["audit"],"enabled":true}]}\'',
        "",
        "# 3. a bucket for what Firehose could not deliver (after its 2 hours of retries), and Firehose's role",
        f'aws s3api create-bucket --region "$REGION" --bucket "{bucket}"{location}',
        f"cat > kubetrail-firehose-trust.json <<EOF\n{_json(trust_firehose)}\nEOF",
        f"aws iam create-role --role-name {firehose_role} --assume-role-policy-document file://kubetrail-firehose-trust.json",
        f"cat > kubetrail-firehose-backup.json <<EOF\n{_json(backup)}\nEOF",
        f"aws iam put-role-policy --role-name {firehose_role} --policy-name kubetrail-backup "
        "--policy-document file://kubetrail-firehose-backup.json",
        "",
        "# 4. the Firehose stream: HTTP endpoint destination = serve, with the access key; gzip'd requests",
        f"cat > kubetrail-firehose-destination.json <<EOF\n{_json(destination)}\nEOF",
        f'aws firehose create-delivery-stream --region "$REGION" --delivery-stream-name {stream} '
        "--delivery-stream-type DirectPut "
        "--http-endpoint-destination-configuration file://kubetrail-firehose-destination.json",
        f'until [ "$(aws firehose describe-delivery-stream --region "$REGION" --delivery-stream-name {stream} '
        '--query DeliveryStreamDescription.DeliveryStreamStatus --output text)" = ACTIVE ]; do sleep 10; done',
        "",
        "# 5. CloudWatch Logs' role, and the subscription filter sending the audit events to the stream",
        f"cat > kubetrail-cwlogs-trust.json <<EOF\n{_json(trust_logs)}\nEOF",
        f"aws iam create-role --role-name {logs_role} --assume-role-policy-document file://kubetrail-cwlogs-trust.json",
        f"cat > kubetrail-cwlogs-put.json <<EOF\n{_json(put)}\nEOF",
        f"aws iam put-role-policy --role-name {logs_role} --policy-name kubetrail-put "
        "--policy-document file://kubetrail-cwlogs-put.json",
        f'aws logs put-subscription-filter --region "$REGION" --log-group-name {q(group)} '
        f"--filter-name kubetrail --filter-pattern {q(AUDIT_FILTER)} "
        f'--destination-arn "arn:aws:firehose:$REGION:$ACCOUNT:deliverystream/{stream}" '
        f'--role-arn "arn:aws:iam::$ACCOUNT:role/{logs_role}"',
        "",
        f"# then: kubetrail serve … --firehose-access-key-file {key_file}   (serving {endpoint} with TLS)",
    ]
    return "\n".join(lines) + "\n"


def eks_pull_script(cluster: str, region: str, *, account: str | None) -> str:
    """The script: audit log on, and the IAM policy for the role serve runs as (IRSA, Pod Identity, instance)."""
    group = f"/aws/eks/{cluster}/cluster"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadEksAuditLog",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
                "Resource": f"arn:aws:logs:{region}:$ACCOUNT:log-group:{group}:*",
            }
        ],
    }
    q = shlex.quote
    lines = [
        "#!/bin/sh",
        f"# EKS cluster {cluster}: kubetrail serve pulls its audit log from CloudWatch Logs ({group})",
        "set -eu",
        f"REGION={q(region)}",
        *_account_lines(account),
        "",
        "# 1. the API server's audit log, into the cluster's log group",
        f'aws eks update-cluster-config --region "$REGION" --name {q(cluster)} '
        '--logging \'{"clusterLogging":[{"types":["audit"],"enabled":true}]}\'',
        "",
        "# 2. what the eks-cloudwatch source may call; attach it to the role serve runs as",
        f"cat > kubetrail-read-audit.json <<EOF\n{_json(policy)}\nEOF",
        f"aws iam create-policy --policy-name kubetrail-read-audit-{cluster} "
        "--policy-document file://kubetrail-read-audit.json",
        "# e.g. aws iam attach-role-policy --role-name ROLE "
        f'--policy-arn "arn:aws:iam::$ACCOUNT:policy/kubetrail-read-audit-{cluster}"',
        "",
        "# 3. serve's config (docs/managed-clusters.md):",
        "#   sources:",
        f"#     - {{type: eks-cloudwatch, cluster: {cluster}, region: {region}}}",
    ]
    return "\n".join(lines) + "\n"


@click.group(name="cloud-setup")
def cloud_setup_group() -> None:
    """Print the cloud CLI commands that route a managed cluster's audit log to `kubetrail serve`."""


@cloud_setup_group.command(name="eks")
@click.option("--cluster", required=True, help="The EKS cluster's name (also its kubetrail cluster label).")
@click.option("--region", required=True, envvar="AWS_REGION", help="Its AWS region  [env: AWS_REGION]")
@click.option("--url", help="serve's https URL as Firehose reaches it (push; /firehose/<cluster> is added).")
@click.option("--pull", is_flag=True, help="Print the pull setup (serve reads CloudWatch Logs) instead.")
@click.option("--account-id", help="The AWS account (default: asked of `aws sts get-caller-identity`).")
@click.option("--key-file", default="firehose-keys", show_default=True, help="Where the access key is written.")
@click.option("--bucket", help="S3 bucket for undeliverable records  [default: kubetrail-firehose-<cluster>-<account>]")
def eks_command(
    cluster: str, region: str, url: str | None, pull: bool, account_id: str | None, key_file: str, bucket: str | None
) -> None:
    """Print the `aws` commands that send an EKS cluster's audit log to `kubetrail serve`.

    Push (--url): a CloudWatch Logs subscription filter feeds an Amazon Data Firehose stream whose HTTP
    endpoint is serve's /firehose/<cluster>. Pull (--pull): serve reads the log group itself; the script
    makes the IAM policy it needs. Nothing is run: read the script, then run it with credentials allowed to
    create these resources.

    \b
    Examples:
      kubetrail cloud-setup eks --cluster prod --region eu-west-1 --url https://kubetrail.example.com > setup.sh
      kubetrail cloud-setup eks --cluster prod --region eu-west-1 --pull
    """
    try:
        check_cluster(cluster)
    except StoreError as error:
        raise CloudSetupError(error.message, field="--cluster", hint=error.hint) from None
    if pull:
        click.echo(eks_pull_script(cluster, region, account=account_id), nl=False)
        return
    if url is None:
        raise CloudSetupError("the push setup needs serve's URL", field="--url", hint="or pass --pull")
    chosen = bucket or f"kubetrail-firehose-{re.sub(r'[^a-z0-9-]', '-', cluster.lower())}-{account_id or '$ACCOUNT'}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]|.*\$ACCOUNT", chosen):
        raise CloudSetupError(f"{chosen!r} is not a valid S3 bucket name", field="--bucket")
    click.echo(eks_push_script(cluster, region, url, account=account_id, key_file=key_file, bucket=chosen), nl=False)


# GKE and AKS register their commands on the group (imported here so that `cloud-setup --help` lists them).
from kubetrail.cli import cloud_setup_aks, cloud_setup_gke  # noqa: E402, F401
