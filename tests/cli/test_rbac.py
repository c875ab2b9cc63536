"""`kubetrail rbac` end to end: output that kubectl accepts, and the unused report, through the real command."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli

KUBECTL = shutil.which("kubectl")
RBAC_V1 = "rbac.authorization.k8s.io/v1"
_KINDS = [("roles", "Role", True), ("rolebindings", "RoleBinding", True)]
_KINDS += [("clusterroles", "ClusterRole", False), ("clusterrolebindings", "ClusterRoleBinding", False)]
DISCOVERY: dict[str, object] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": []},
    "/apis": {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": "rbac.authorization.k8s.io",
                "versions": [{"groupVersion": RBAC_V1, "version": "v1"}],
                "preferredVersion": {"groupVersion": RBAC_V1, "version": "v1"},
            }
        ],
    },
    f"/apis/{RBAC_V1}": {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": RBAC_V1,
        "resources": [
            {
                "name": name,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "get"],
            }
            for name, kind, namespaced in _KINDS
        ],
    },
}


class _Discovery(BaseHTTPRequestHandler):
    """Just enough of an apiserver for kubectl's client-side dry run: discovery, and 404 for every object."""

    def do_GET(self) -> None:
        body = DISCOVERY.get(self.path.split("?", 1)[0])
        status = 200 if body is not None else 404
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
        f"clusters:\n- name: t\n  cluster: {{server: 'http://127.0.0.1:{server.server_port}'}}\n"
        "contexts:\n- name: t\n  context: {cluster: t, user: t}\nusers:\n- name: t\n  user: {}\n"
    )
    yield config
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def generated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rbac-cli") / "audit.log"
    result = _kubetrail("generate", "--duration", "60", "--seed", "5", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _kubetrail(*args: str) -> Ran:
    """Run the kubetrail command in-process (as `kubetrail ARGS…`), its exit code and both output streams."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def _dry_run(kubeconfig: Path, manifest: Path) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"}
    command = [str(KUBECTL), "apply", "--dry-run=client", "--validate=false", "-f", str(manifest)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (["--user", "alice"], ["role.rbac.authorization.k8s.io/kubetrail:alice created (dry run)"]),
        (
            ["--serviceaccount", "ns1/sa1"],
            ["clusterrole.rbac.authorization.k8s.io/kubetrail:system:serviceaccount:ns1:sa1 created (dry run)"],
        ),
        (["--user", "bob"], ["clusterrolebinding.rbac.authorization.k8s.io/kubetrail:bob created (dry run)"]),
    ],
)
def test_generate_applies_with_kubectl(
    corpus: Path, kubeconfig: Path, tmp_path: Path, who: list[str], expected: list[str]
) -> None:
    out = tmp_path / "rbac.yaml"
    log = corpus / "audit2rbac" / "demo.log"
    result = _kubetrail("rbac", "generate", *who, "--include-denied", "--file", str(log), "-o", str(out))
    assert result.returncode == 0, result.stderr
    applied = _dry_run(kubeconfig, out)
    assert applied.returncode == 0, applied.stderr
    for line in expected:
        assert line in applied.stdout.splitlines()


def test_generate_from_generated_log_applies(generated_log: Path, kubeconfig: Path, tmp_path: Path) -> None:
    out = tmp_path / "rbac.yaml"
    result = _kubetrail("rbac", "generate", "--user", "bob@example.com", "--file", str(generated_log), "-o", str(out))
    assert result.returncode == 0, result.stderr
    applied = _dry_run(kubeconfig, out)
    assert applied.returncode == 0, applied.stderr
    assert "rolebinding.rbac.authorization.k8s.io/kubetrail:bob@example.com" in applied.stdout


def test_generate_needs_one_subject(corpus: Path) -> None:
    result = _kubetrail("rbac", "generate", "--file", str(corpus / "audit2rbac" / "demo.log"))
    assert result.returncode == 2
    assert "give exactly one of --user or --serviceaccount" in result.stderr
    assert "Traceback" not in result.stderr


def test_window_limits_the_requests(generated_log: Path) -> None:
    """The generated log starts at 2026-03-19T10:00Z and lasts a minute."""
    log = str(generated_log)
    base = ["rbac", "generate", "--user", "bob@example.com", "--file", log]
    everything = _kubetrail(*base)
    assert everything.returncode == 0, everything.stderr
    assert "kind: Role" in everything.stdout
    before = _kubetrail(*base, "--since", "2026-03-19T09:00:00Z")
    assert before.stdout.splitlines()[2:] == everything.stdout.splitlines()[2:]
    after = _kubetrail(*base, "--since", "2026-03-19T11:00:00Z")
    assert "nothing to grant" in after.stdout
    ended = _kubetrail(*base, "--until", "2026-03-19T09:00:00Z")
    assert "nothing to grant" in ended.stdout


def test_unused_json(corpus: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(
        "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: r}\n"
        "rules:\n- {apiGroups: [''], resources: [pods], verbs: [list, delete]}\n---\n"
        "kind: RoleBinding\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: b, namespace: default}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}\n"
        "subjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]\n"
    )
    log = corpus / "audit2rbac" / "demo.log"
    result = _kubetrail("rbac", "unused", "--rbac", str(tmp_path), "--file", str(log), "-o", "json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["subject"], row["namespace"], row["verb"], row["resource"]) for row in rows] == [
        ("User bob", "default", "delete", "pods")
    ]


def test_store_and_file_give_the_same_roles(generated_log: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingested = _kubetrail("ingest", "--store", str(store), str(generated_log))
    assert ingested.returncode == 0, ingested.stderr
    args = ["rbac", "generate", "--serviceaccount", "kube-system/deployment-controller"]
    from_file = _kubetrail(*args, "--file", str(generated_log))
    from_store = _kubetrail(*args, "--store", str(store))
    assert from_file.returncode == 0 and from_store.returncode == 0, from_store.stderr
    assert "kind: ClusterRole" in from_file.stdout or "kind: Role" in from_file.stdout
    assert from_store.stdout == from_file.stdout


def test_unused_subject_filter(corpus: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(
        "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: r}\n"
        "rules:\n- {apiGroups: [''], resources: [nodes], verbs: [get]}\n---\n"
        "kind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: b}\n"
        "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: r}\n"
        "subjects:\n- {kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}\n"
        "- {kind: ServiceAccount, name: sa1, namespace: ns1}\n"
    )
    log = str(corpus / "audit2rbac" / "demo.log")
    result = _kubetrail("rbac", "unused", "--rbac", str(manifest), log, "--subject", "ns1/sa1", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["subject"] for line in result.stdout.splitlines()] == ["ServiceAccount ns1/sa1"]
