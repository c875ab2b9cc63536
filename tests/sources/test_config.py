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
