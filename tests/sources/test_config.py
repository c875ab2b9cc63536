"""serve's `sources:` and `firehose:` settings: typed specs, flags, and errors that name the file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubetrail.serve.config import ServeConfigError, build_config, load_config_file
from kubetrail.sources.config import SourceConfigError
from kubetrail.sources.eks import EksCloudWatchSpec


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(f"store: data\ncluster: fallback\n{text}")
    return path


def test_sources_and_firehose_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("k\n")
    path = config_file(
        tmp_path,
        """
sources:
  - {type: eks-cloudwatch, log-group: /aws/eks/prod/cluster, region: eu-west-1, poll-interval: 500ms}
  - {type: eks-cloudwatch, cluster: staging, from: end, discover-interval: 2m, name: stage}
  - {type: eks-cloudwatch, log-group: /custom/group}
firehose: {access-key-file: keys}
""",
    )
    config = build_config(load_config_file(path), {})
    assert config.firehose_key_file == tmp_path / "keys"
    prod, staging, custom = config.sources
    assert isinstance(prod, EksCloudWatchSpec) and isinstance(staging, EksCloudWatchSpec)
    assert (prod.name, prod.cluster, prod.log_group, prod.region, prod.poll_interval) == (
        "eks-cloudwatch:prod", "prod", "/aws/eks/prod/cluster", "eu-west-1", 0.5,
    )  # fmt: skip
    assert (staging.name, staging.log_group, staging.from_start, staging.discover_interval) == (
        "stage", "/aws/eks/staging/cluster", False, 120.0,
    )  # fmt: skip
    assert (custom.cluster, custom.name) == ("fallback", "eks-cloudwatch:fallback")


def test_the_flags(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("k\n")
    flags = {
        "store": str(tmp_path),
        "eks-log-group": ("/aws/eks/a/cluster",),
        "firehose-access-key-file": str(tmp_path / "keys"),
    }
    config = build_config({}, flags)
    assert [spec.cluster for spec in config.sources] == ["a"]
    assert config.firehose_key_file == tmp_path / "keys"


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("{type: gcs}", "sources[0].type", "unknown source type"),
        ("{type: eks-cloudwatch}", "sources[0].log-group", "needs `log-group`"),
        (
            "{type: eks-cloudwatch, cluster: a, poll-interval: soon}",
            "sources[0].poll-interval",
            "not a positive duration",
        ),
        ("{type: eks-cloudwatch, cluster: a, regoin: x}", "sources[0].regoin", "unknown key"),
        ("{type: eks-cloudwatch, cluster: 'bad/name'}", "sources[0].cluster", "invalid cluster name"),
        ("{type: eks-cloudwatch, cluster: a, from: middle}", "sources[0].from", "not one of start, end"),
        (
            "{type: eks-cloudwatch, cluster: a, endpoint-url: localhost}",
            "sources[0].endpoint-url",
            "not an http(s) URL",
        ),
        ("prod", "sources[0]", "a mapping"),
    ],
)
def test_a_bad_entry_names_the_file_and_key(tmp_path: Path, entry: str, field: str, words: str) -> None:
    path = config_file(tmp_path, f"sources:\n  - {entry}\n")
    with pytest.raises(SourceConfigError) as caught:
        build_config(load_config_file(path), {})
    assert caught.value.file == str(path) and caught.value.field == field and words in caught.value.message


def test_two_sources_of_one_name_and_other_misuses(tmp_path: Path) -> None:
    path = config_file(
        tmp_path, "sources:\n  - {type: eks-cloudwatch, cluster: a}\n  - {type: eks-cloudwatch, cluster: a}\n"
    )
    with pytest.raises(SourceConfigError, match="two sources are named"):
        build_config(load_config_file(path), {})
    with pytest.raises(ServeConfigError, match="not a readable file") as caught:
        build_config({}, {"store": str(tmp_path), "firehose-access-key-file": str(tmp_path / "missing")})
    assert caught.value.field == "firehose.access-key-file"
    with pytest.raises(ServeConfigError, match="does not run cloud sources"):
        build_config({}, {"bus": "nats://127.0.0.1:4222", "eks-log-group": ("/aws/eks/a/cluster",)})
    path = config_file(tmp_path, "firehose: {key-file: x}\n")
    with pytest.raises(ServeConfigError, match="mapping of Firehose settings"):
        build_config(load_config_file(path), {})


def test_configuring_a_source_loads_no_cloud_sdk_and_no_source_loads_nothing(tmp_path: Path) -> None:
    code = (
        "import sys; from kubetrail.serve.config import build_config\n"
        f"build_config({{}}, {{'store': {str(tmp_path)!r}}})\n"
        "print('sources' if 'kubetrail.sources' in sys.modules else 'none')\n"
        f"build_config({{}}, {{'store': {str(tmp_path)!r}, 'eks-log-group': ('/aws/eks/a/cluster',)}})\n"
        "print('boto3' if 'boto3' in sys.modules else 'no-sdk')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["none", "no-sdk"], result.stderr


def test_gke_and_aks_sources_and_the_pubsub_push_settings(tmp_path: Path) -> None:
    from kubetrail.sources.aks_eventhub import AksEventHubSpec
    from kubetrail.sources.aks_storage import AksStorageSpec
    from kubetrail.sources.gke import GkePubSubSpec

    (tmp_path / "jwks.json").write_text('{"keys": []}')
    path = config_file(
        tmp_path,
        """
sources:
  - {type: gke-pubsub, subscription: projects/p-1/subscriptions/audit, wait: 2s}
  - {type: gke-pubsub, subscription: audit, project: p-2, cluster: gke-b, max-messages: 10}
  - {type: aks-storage, account-url: "https://audit.blob.core.windows.net", cluster: aks-a}
  - type: aks-storage
    account-url: "https://audit.blob.core.windows.net"
    resource-id: /subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/Aks-B
  - {type: aks-eventhub, namespace: hubs, eventhub: aks-audit, consumer-group: kubetrail, from: end}
pubsub-push: {audience: "https://kt.example.com/pubsub", service-account: [a@p.iam.gserviceaccount.com],
              jwks: jwks.json}
""",
    )
    config = build_config(load_config_file(path), {})
    first, second, third, fourth, fifth = config.sources
    assert isinstance(first, GkePubSubSpec) and isinstance(second, GkePubSubSpec)
    assert (first.name, first.cluster, first.subscription, first.wait) == (
        "gke-pubsub:p-1/audit", None, "projects/p-1/subscriptions/audit", 2.0,
    )  # fmt: skip
    assert (second.subscription, second.cluster, second.max_messages) == (
        "projects/p-2/subscriptions/audit",
        "gke-b",
        10,
    )
    assert isinstance(third, AksStorageSpec) and isinstance(fourth, AksStorageSpec)
    assert (third.name, third.cluster, third.containers) == (
        "aks-storage:aks-a", "aks-a", ("insights-logs-kube-audit", "insights-logs-kube-audit-admin"),
    )  # fmt: skip
    assert (fourth.cluster, fourth.name) == ("aks-b", "aks-storage:aks-b")
    assert isinstance(fifth, AksEventHubSpec)
    assert (fifth.namespace, fifth.consumer_group, fifth.from_start) == (
        "hubs.servicebus.windows.net",
        "kubetrail",
        False,
    )
    assert config.pubsub_push is not None
    assert config.pubsub_push.audiences == ("https://kt.example.com/pubsub",)
    assert config.pubsub_push.jwks == str(tmp_path / "jwks.json")
    flags = build_config(
        {},
        {
            "store": str(tmp_path),
            "gke-subscription": ("projects/p/subscriptions/s",),
            "aks-storage-account": ("https://a.blob.core.windows.net",),
            "aks-eventhub": ("ns.servicebus.windows.net/hub",),
            "pubsub-audience": ("https://kt/pubsub",),
        },
    )
    assert [spec.type for spec in flags.sources] == ["gke-pubsub", "aks-storage", "aks-eventhub"]
    assert flags.pubsub_push is not None and flags.pubsub_push.jwks == "https://www.googleapis.com/oauth2/v3/certs"


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("{type: gke-pubsub}", "sources[0].subscription", "needs `subscription`"),
        ("{type: gke-pubsub, subscription: audit}", "sources[0].project", "needs `project`"),
        ("{type: gke-pubsub, subscription: 'projects/p/topics/t'}", "sources[0].subscription", "is not projects/"),
        ("{type: gke-pubsub, subscription: a, project: p, max-messages: 5000}", "sources[0].max-messages", "1 to 1000"),
        ("{type: aks-storage, account-url: 'ftp://x'}", "sources[0].account-url", "not an http(s) URL"),
        ("{type: aks-storage, account-url: 'https://a', resource-id: /x/y}", "sources[0].resource-id", "AKS cluster"),
        ("{type: aks-storage, account-url: 'https://a', containers: []}", "sources[0].containers", "list of container"),
        ("{type: aks-eventhub, namespace: n}", "sources[0].eventhub", "needs `eventhub`"),
        ("{type: aks-eventhub, eventhub: h}", "sources[0].namespace", "needs `namespace`"),
    ],
)
def test_a_bad_gke_or_aks_entry_names_the_file_and_key(tmp_path: Path, entry: str, field: str, words: str) -> None:
    path = config_file(tmp_path, f"sources:\n  - {entry}\n")
    with pytest.raises(SourceConfigError) as caught:
        build_config(load_config_file(path), {})
    assert caught.value.field == field and words in caught.value.message


def test_pubsub_push_settings_that_cannot_work(tmp_path: Path) -> None:
    with pytest.raises(ServeConfigError, match="audience its tokens are issued for"):
        build_config({}, {"store": str(tmp_path), "pubsub-service-account": ("a@b",)})
    with pytest.raises(ServeConfigError, match="not a readable file") as caught:
        build_config({}, {"store": str(tmp_path), "pubsub-audience": ("x",), "pubsub-jwks": str(tmp_path / "none")})
    assert caught.value.field == "pubsub-push.jwks"
    path = config_file(tmp_path, "pubsub-push: {audiences: x}\n")
    with pytest.raises(ServeConfigError, match="mapping of Pub/Sub push settings"):
        build_config(load_config_file(path), {})


@pytest.mark.parametrize(
    ("entry", "blocked", "extra"),
    [
        ({"type": "gke-pubsub", "subscription": "projects/p/subscriptions/s"}, "google.cloud.pubsub_v1", "gcp"),
        ({"type": "aks-storage", "account-url": "https://a.blob.core.windows.net"}, "azure.storage.blob", "azure"),
        ({"type": "aks-eventhub", "namespace": "n", "eventhub": "h"}, "azure.eventhub", "azure"),
    ],
)
def test_a_missing_sdk_is_one_line_naming_the_extra(
    tmp_path: Path, entry: dict[str, str], blocked: str, extra: str
) -> None:
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "from kubetrail.extras import MissingExtraError\n"
        "from kubetrail.sources.config import parse_sources\n"
        f"(spec,) = parse_sources([{entry!r}], file='x', default_cluster='d')\n"
        "try:\n"
        f"    spec.open(None, None)\n"
        "except MissingExtraError as error:\n"
        "    print(error, '|', error.hint)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.count("\n") == 1 and f"the `{extra}` extra" in result.stdout, result.stderr
    assert f"pip install 'kubetrail[{extra}]'" in result.stdout


def test_configuring_gke_and_aks_sources_loads_no_cloud_sdk(tmp_path: Path) -> None:
    code = (
        "import sys; from kubetrail.serve.config import build_config\n"
        f"build_config({{}}, {{'store': {str(tmp_path)!r}, 'gke-subscription': ('projects/p/subscriptions/s',), "
        "'aks-storage-account': ('https://a.blob.core.windows.net',), 'aks-eventhub': ('ns/hub',), "
        "'pubsub-audience': ('https://kt/pubsub',)})\n"
        "print(sorted(name for name in ('google.cloud', 'jwt', 'azure') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
