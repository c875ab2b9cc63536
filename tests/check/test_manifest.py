"""Reading kube-apiserver's flags and mounts from static pod manifests and flags files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrail.check import ManifestError, parse_config, read_config
from tests.check.manifests import GOOD_MANIFEST


def test_pod_manifest_flags_and_hostpath_mounts() -> None:
    config = parse_config(GOOD_MANIFEST, "kube-apiserver.yaml")
    assert config.is_pod
    assert config.get("audit-log-maxage") == "30"
    assert config.get("audit-policy-file") == "/etc/kubernetes/audit-policy.yaml"
    assert config.host_path("/etc/kubernetes/audit-policy.yaml") == "/etc/kubernetes/audit-policy.yaml"
    assert config.host_path("/var/log/kubernetes/audit/audit.log") == "/var/log/kubernetes/audit/audit.log"
    assert config.host_path("/etc/ssl/certs/ca.crt") is None
    assert (
        config.flag_lines["audit-log-path"]
        == GOOD_MANIFEST.splitlines().index("    - --audit-log-path=/var/log/kubernetes/audit/audit.log") + 1
    )


def test_mount_paths_map_to_a_different_host_directory() -> None:
    text = GOOD_MANIFEST.replace("path: /var/log/kubernetes/audit/", "path: /data/audit")
    config = parse_config(text, "m.yaml")
    assert config.host_path("/var/log/kubernetes/audit/audit.log") == "/data/audit/audit.log"


def test_args_follow_the_command_and_the_last_repeat_wins() -> None:
    text = GOOD_MANIFEST.replace(
        "    volumeMounts:", "    args: ['--audit-log-maxage', '7', '--audit-log-maxage=9']\n    volumeMounts:"
    )
    assert parse_config(text, "m.yaml").get("audit-log-maxage") == "9"


def test_flags_file_with_continuations_and_comments() -> None:
    text = (
        "# kube-apiserver flags\n"
        "ExecStart=/usr/local/bin/kube-apiserver \\\n"
        "  --audit-log-path /var/log/audit.log \\\n"
        '  --audit-policy-file="/etc/kubernetes/policy.yaml" \\\n'
        "  --audit-log-compress\n"
    )
    config = parse_config(text, "flags")
    assert not config.is_pod
    assert config.flags == {
        "audit-log-path": "/var/log/audit.log",
        "audit-policy-file": "/etc/kubernetes/policy.yaml",
        "audit-log-compress": "true",
    }
    assert config.flag_lines["audit-policy-file"] == 4


def test_unusable_inputs_are_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no kube-apiserver container"):
        parse_config("kind: Pod\nspec:\n  containers:\n  - name: etcd\n    command: [etcd]\n", "etcd.yaml")
    with pytest.raises(ManifestError, match="kind 'Deployment'"):
        parse_config("kind: Deployment\nspec: {}\n", "d.yaml")
    with pytest.raises(ManifestError, match="no --flags"):
        parse_config("hello world\n", "x")
    with pytest.raises(ManifestError, match="cannot read"):
        read_config(tmp_path / "missing.yaml")


KUBEADM_V1BETA3 = """\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
apiServer:
  extraArgs:
    audit-policy-file: /etc/kubernetes/audit-policy.yaml
    audit-log-path: /var/log/kubernetes/audit/audit.log
    audit-log-maxage: "30"
  extraVolumes:
  - name: audit-policy
    hostPath: /etc/kubernetes/audit-policy.yaml
    mountPath: /etc/kubernetes/audit-policy.yaml
    readOnly: true
    pathType: File
"""


def test_kubeadm_cluster_configuration_extra_args_and_volumes() -> None:
    config = parse_config("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n---\n" + KUBEADM_V1BETA3, "k")
    assert config.get("audit-log-maxage") == "30"
    assert config.host_path("/etc/kubernetes/audit-policy.yaml") == "/etc/kubernetes/audit-policy.yaml"
    assert config.host_path("/var/log/kubernetes/audit/audit.log") is None  # no extraVolume for the log directory
    assert config.flag_lines["audit-log-maxage"] == 10


def test_kubeadm_v1beta4_extra_args_are_a_name_value_list() -> None:
    text = (
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  extraArgs:\n"
        "  - name: audit-log-maxbackup\n    value: '10'\n"
    )
    assert parse_config(text, "k").flags == {"audit-log-maxbackup": "10"}
