"""`kubetrail cloud-setup eks`: the printed script runs as written (sh, heredocs, variables) with every `aws`
command checked against botocore's model of the AWS API and carried out by moto's server on loopback; what it
builds routes the cluster's audit log to serve's Firehose route with the key serve checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.cloud_setup import cloud_setup_group
from kubetrail.collect.auth import TokenTable
from tests.sources.helpers import AWS_ENV, aws_environment, moto_server

pytest.importorskip("boto3", reason="the aws extra (boto3) is not installed")

ACCOUNT = "123456789012"  # moto's account
REGION = "eu-west-1"

# An `aws` command for the script: parses `aws SERVICE OPERATION --name value …` the way the AWS CLI maps names
# onto the API (kebab-case members; JSON for structures and lists; file:// reads a file), validates the call with
# botocore and sends it to moto. `--query`/`--output text` as the CLI does for the two calls that use them.
SHIM = r"""
import json, os, sys
import boto3, jmespath
from botocore import xform_name
argv = sys.argv[1:]
service, operation, rest = argv[0], argv[1], argv[2:]
region, query, output, params = os.environ["AWS_DEFAULT_REGION"], None, "json", {}
client = boto3.client(
    {"s3api": "s3"}.get(service, service), region_name=region, endpoint_url=os.environ["KUBETRAIL_TEST_AWS"]
)
model = client.meta.service_model
name = next(op for op in model.operation_names if xform_name(op, "-") == operation)
members = model.operation_model(name).input_shape.members
index = 0
while index < len(rest):
    option, value = rest[index][2:], rest[index + 1]
    index += 2
    if option == "region":
        continue
    if option in ("query", "output"):
        query, output = (value, output) if option == "query" else (query, value)
        continue
    member = next(key for key in members if xform_name(key, "-") == option)
    if value.startswith("file://"):
        value = open(value[7:]).read()
    shape = members[member].type_name
    params[member] = json.loads(value) if shape in ("structure", "list", "map") else value
with open(os.environ["KUBETRAIL_TEST_CALLS"], "a") as log:
    log.write(json.dumps([service, operation, params]) + "\n")
result = getattr(client, xform_name(name))(**params)
result.pop("ResponseMetadata", None)
if query:
    result = jmespath.search(query, result)
print(result if output == "text" else json.dumps(result, default=str))
"""


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with aws_environment(), moto_server() as url:
        yield url


def script(*arguments: str) -> str:
    result = CliRunner().invoke(cloud_setup_group, ["eks", *arguments])
    assert result.exit_code == 0, result.output
    return result.output


def run_script(text: str, folder: Path, url: str) -> list[list[Any]]:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "aws"
    shim.write_text(f"#!{sys.executable}\n{SHIM}")
    shim.chmod(0o755)
    calls = folder / "calls.ndjson"
    environment = {**os.environ, **AWS_ENV, "PATH": f"{bin_dir}:{os.environ['PATH']}", "KUBETRAIL_TEST_AWS": url,
                   "KUBETRAIL_TEST_CALLS": str(calls)}  # fmt: skip
    done = subprocess.run(["sh", "-c", text], cwd=folder, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in calls.read_text().splitlines()]


def prepare(url: str, cluster: str) -> Any:
    """What exists before the script runs: the EKS cluster and its log group."""
    import boto3

    eks = boto3.client("eks", region_name=REGION, endpoint_url=url)
    eks.create_cluster(name=cluster, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={})
    logs = boto3.client("logs", region_name=REGION, endpoint_url=url)
    logs.create_log_group(logGroupName=f"/aws/eks/{cluster}/cluster")
    return logs


def test_the_push_script_builds_a_firehose_stream_that_delivers_to_serve_with_the_key(
    tmp_path: Path, moto: str
) -> None:
    import boto3

    logs = prepare(moto, "prod")
    calls = run_script(
        script("--cluster", "prod", "--region", REGION, "--url", "https://kt.example.com"), tmp_path, moto
    )
    assert [call[:2] for call in calls] == [
        ["sts", "get-caller-identity"], ["eks", "update-cluster-config"], ["s3api", "create-bucket"],
        ["iam", "create-role"], ["iam", "put-role-policy"], ["firehose", "create-delivery-stream"],
        ["firehose", "describe-delivery-stream"], ["iam", "create-role"], ["iam", "put-role-policy"],
        ["logs", "put-subscription-filter"],
    ]  # fmt: skip
    assert calls[1][2]["logging"] == {"clusterLogging": [{"types": ["audit"], "enabled": True}]}
    key, cluster = (tmp_path / "firehose-keys").read_text().strip().split(",")
    assert cluster == "prod" and len(key) == 64 and (tmp_path / "firehose-keys").stat().st_mode & 0o077 == 0
    entry = TokenTable.load(tmp_path / "firehose-keys").match(key)
    assert entry is not None and entry.cluster == "prod"

    firehose = boto3.client("firehose", region_name=REGION, endpoint_url=moto)
    stream = firehose.describe_delivery_stream(DeliveryStreamName="kubetrail-prod")["DeliveryStreamDescription"]
    http = stream["Destinations"][0]["HttpEndpointDestinationDescription"]
    assert http["EndpointConfiguration"]["Url"] == "https://kt.example.com/firehose/prod"
    assert http["RequestConfiguration"]["ContentEncoding"] == "GZIP" and http["S3BackupMode"] == "FailedDataOnly"
    sent = calls[5][2]["HttpEndpointDestinationConfiguration"]
    assert sent["EndpointConfiguration"]["AccessKey"] == key
    assert sent["RoleARN"] == f"arn:aws:iam::{ACCOUNT}:role/kubetrail-firehose-prod"
    (subscription,) = logs.describe_subscription_filters(logGroupName="/aws/eks/prod/cluster")["subscriptionFilters"]
    assert subscription["destinationArn"] == stream["DeliveryStreamARN"]
    assert subscription["filterPattern"] == '{ $.kind = "Event" }'
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto)
    trust = iam.get_role(RoleName="kubetrail-cwlogs-prod")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "logs.amazonaws.com"}
    policy = iam.get_role_policy(RoleName="kubetrail-cwlogs-prod", PolicyName="kubetrail-put")["PolicyDocument"]
    assert policy["Statement"][0]["Resource"] == stream["DeliveryStreamARN"]


def test_the_pull_script_grants_what_the_source_calls(tmp_path: Path, moto: str) -> None:
    import boto3

    prepare(moto, "pulled")
    calls = run_script(script("--cluster", "pulled", "--region", REGION, "--pull"), tmp_path, moto)
    assert [call[:2] for call in calls] == [
        ["sts", "get-caller-identity"], ["eks", "update-cluster-config"], ["iam", "create-policy"]
    ]  # fmt: skip
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto)
    arn = f"arn:aws:iam::{ACCOUNT}:policy/kubetrail-read-audit-pulled"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    statement = document["Statement"][0]
    assert {"logs:DescribeLogStreams", "logs:GetLogEvents"} <= set(statement["Action"])
    assert statement["Resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/eks/pulled/cluster:*"


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--cluster", "p", "--region", REGION], "--url: the push setup needs serve's URL"),
        (["--cluster", "p", "--region", REGION, "--url", "http://kt.example.com"], "not an https URL"),
        (["--cluster", "p", "--region", REGION, "--url", "https://kt.example.com:8443"], "only to port 443"),
        (["--cluster", "bad/name", "--region", REGION, "--pull"], "invalid cluster name"),
    ],
)
def test_options_that_cannot_work_are_one_line_errors(arguments: list[str], words: str) -> None:
    command = [sys.executable, "-m", "kubetrail.cli.main", "cloud-setup", "eks", *arguments]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
