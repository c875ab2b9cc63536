"""deploy/: every manifest is valid against the Kubernetes OpenAPI schemas (offline), every container is locked
down and probed, and every kubetrail command line uses sub-commands and flags kubetrail really has."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubetrail.cli.main import cli
from tests.conftest import PROJECT_ROOT

kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = PROJECT_ROOT / "deploy"
KUBERNETES_VERSION = "1.30"
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def manifest_files() -> list[Path]:
    return sorted(path for path in DEPLOY.rglob("*.yaml") if path.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [item for item in yaml.safe_load_all(path.read_text()) if item]


def all_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for item in documents(path):
            yield path, item


def containers(item: dict[str, Any]) -> list[dict[str, Any]]:
    spec = item["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def pod_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, item) for path, item in all_objects() if item["kind"] in POD_KINDS]


def kubetrail_containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, item in pod_objects():
        for container in containers(item):
            if container.get("command", [None])[0] == "kubetrail":
                found.append((f"{path.relative_to(DEPLOY)}:{container['name']}", container))
    return found


def test_there_is_something_to_check() -> None:
    kinds = {item["kind"] for _, item in all_objects()}
    assert {"Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret"} <= kinds
    assert len(kubetrail_containers()) == 3  # receivers, workers, the single-process serve


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: str(path.relative_to(DEPLOY)))
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path) -> None:
    for item in documents(path):
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_caught() -> None:
    """The validation above is strict: an unknown field fails it rather than being ignored."""
    _, deployment = next((path, item) for path, item in pod_objects() if item["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securitycontext"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", ["", "single"])
def test_kustomizations_build_and_their_output_validates(directory: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / directory)], check=True, capture_output=True, text=True
    ).stdout
    items = [item for item in yaml.safe_load_all(built) if item]
    for item in items:
        kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
        if item["kind"] != "Namespace":
            assert item["metadata"]["namespace"] == "kubetrail"
    images = {c["image"] for item in items if item["kind"] in POD_KINDS for c in containers(item)}
    assert "kubetrail" not in images  # the placeholder name is replaced by the kustomization's image


@pytest.mark.parametrize(("where", "item"), [(str(p.relative_to(DEPLOY)), i) for p, i in pod_objects()])
def test_pods_run_locked_down(where: str, item: dict[str, Any]) -> None:
    pod = item["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True, where
    assert pod["securityContext"]["runAsUser"] != 0, where
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
    assert pod.get("automountServiceAccountToken") is False, where
    for container in containers(item):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "add" not in context["capabilities"], container["name"]
        assert not context.get("privileged"), container["name"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
        assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]


@pytest.mark.parametrize(("where", "item"), [(str(p.relative_to(DEPLOY)), i) for p, i in pod_objects()])
def test_containers_that_listen_are_probed_on_health_endpoints(where: str, item: dict[str, Any]) -> None:
    for container in containers(item):
        if not container.get("ports"):
            continue
        ports = {port["name"] for port in container["ports"]} | {port["containerPort"] for port in container["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http = container[probe]["httpGet"]
            assert http["port"] in ports, (where, probe)
            if container.get("command", [None])[0] == "kubetrail":
                assert http["path"] == path, (where, probe)
                # the receivers serve TLS only; a worker's health port is plain HTTP and serves nothing else
                assert http.get("scheme", "HTTP") == ("HTTPS" if container["args"][0] == "serve" else "HTTP"), where
            else:
                assert http["path"].startswith("/healthz"), (where, probe)


def test_services_select_pods_that_exist_and_name_their_ports() -> None:
    pods = {}
    for _, item in pod_objects():
        labels = item["spec"]["template"]["metadata"]["labels"]
        names = {port["name"] for c in containers(item) for port in c.get("ports", [])}
        pods[item["metadata"]["name"]] = (labels, names)
    for path, item in all_objects():
        if item["kind"] != "Service":
            continue
        selector = item["spec"]["selector"]
        matches = [names for labels, names in pods.values() if selector.items() <= labels.items()]
        assert matches, f"{path.name}: {item['metadata']['name']} selects no pods"
        for port in item["spec"]["ports"]:
            assert any(port["targetPort"] in names for names in matches), (item["metadata"]["name"], port)


def test_volume_mounts_name_declared_volumes() -> None:
    for _, item in pod_objects():
        spec = item["spec"]
        declared = {volume["name"] for volume in spec["template"]["spec"].get("volumes", [])}
        declared |= {claim["metadata"]["name"] for claim in spec.get("volumeClaimTemplates", [])}
        for container in containers(item):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in declared, (item["metadata"]["name"], mount["name"])


def test_the_lake_is_shared_by_every_worker() -> None:
    claims = {item["metadata"]["name"]: item for _, item in all_objects() if item["kind"] == "PersistentVolumeClaim"}
    (worker,) = [item for _, item in pod_objects() if item["metadata"]["name"] == "kubetrail-worker"]
    (volume,) = [v for v in worker["spec"]["template"]["spec"]["volumes"] if v.get("persistentVolumeClaim")]
    claim = claims[volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert worker["spec"]["replicas"] >= 2


def test_receivers_are_replicated_and_protected_by_a_budget() -> None:
    (receiver,) = [item for _, item in pod_objects() if item["metadata"]["name"] == "kubetrail-receiver"]
    assert receiver["spec"]["replicas"] == 2
    labels = receiver["spec"]["template"]["metadata"]["labels"]
    budgets = [item for _, item in all_objects() if item["kind"] == "PodDisruptionBudget"]
    assert any(b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets)
    policies = [item for _, item in all_objects() if item["kind"] == "NetworkPolicy"]
    guarding = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
    assert guarding and all("Ingress" in p["spec"]["policyTypes"] for p in guarding)


def test_nats_forms_a_three_node_jetstream_cluster() -> None:
    (nats,) = [item for _, item in pod_objects() if item["metadata"]["name"] == "nats"]
    replicas = nats["spec"]["replicas"]
    assert replicas == 3
    headless = nats["spec"]["serviceName"]
    (service,) = [i for _, i in all_objects() if i["kind"] == "Service" and i["metadata"]["name"] == headless]
    assert service["spec"]["clusterIP"] == "None"
    (config,) = [i for _, i in all_objects() if i["kind"] == "ConfigMap" and i["metadata"]["name"] == "nats-config"]
    text = config["data"]["nats.conf"]
    assert re.search(r"^\s*jetstream\s*\{", text, re.MULTILINE)
    routes = set(re.findall(r"nats://([a-z0-9.-]+):6222", text))
    assert routes == {f"nats-{index}.{headless}" for index in range(replicas)}


def test_the_webhook_kubeconfig_points_at_the_receivers_with_one_of_their_tokens() -> None:
    secrets = {item["metadata"]["name"]: item for _, item in all_objects() if item["kind"] == "Secret"}
    kubeconfig = yaml.safe_load(secrets["kubetrail-apiserver-webhook"]["stringData"]["webhook-kubeconfig.yaml"])
    assert kubeconfig["kind"] == "Config"
    context = next(c for c in kubeconfig["contexts"] if c["name"] == kubeconfig["current-context"])["context"]
    cluster = next(c for c in kubeconfig["clusters"] if c["name"] == context["cluster"])["cluster"]
    user = next(u for u in kubeconfig["users"] if u["name"] == context["user"])["user"]
    match = re.fullmatch(r"https://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)/audit/([a-z0-9-]+)", cluster["server"])
    assert match, cluster["server"]
    service_name, namespace, port, cluster_name = match.groups()
    (service,) = [i for _, i in all_objects() if i["kind"] == "Service" and i["metadata"]["name"] == service_name]
    assert namespace == "kubetrail"
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    lines = secrets["kubetrail-receiver-tokens"]["stringData"]["tokens"].splitlines()
    assert f"{user['token']},{cluster_name}" in lines


# --- the command lines use what kubetrail really has -------------------------------------------------------


def expand(argument: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), argument)


def flags_of(args: list[str]) -> list[str]:
    return [argument.split("=", 1)[0] for argument in args if argument.startswith("--")]


def help_text(command: str) -> str | None:
    result = CliRunner().invoke(cli, [command, "--help"])
    return result.output if result.exit_code == 0 else None


@pytest.mark.parametrize(("where", "container"), kubetrail_containers(), ids=lambda value: str(value)[:40])
def test_command_lines_use_real_subcommands_and_flags(where: str, container: dict[str, Any]) -> None:
    command, *args = container["args"]
    env = {item["name"]: "set" for item in container.get("env", [])}
    for argument in args:
        assert "$(" not in expand(argument, env), f"{where}: {argument} names an undefined variable"
    text = help_text(command)
    if text is None:
        pytest.skip(f"`kubetrail {command}` does not exist yet")
    missing = [flag for flag in flags_of(args) if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    if missing == ["--bus"]:
        pytest.skip(f"`kubetrail {command}` has every other flag but no --bus yet")
    assert not missing, f"{where}: `kubetrail {command}` has no {', '.join(missing)}"


def test_the_flag_check_catches_an_unknown_flag() -> None:
    text = help_text("serve")
    assert text is not None
    assert re.search(r"(?<![\w-])--listen(?![\w-])", text)
    assert not re.search(r"(?<![\w-])--tls(?![\w-])", text)  # --tls-cert exists, --tls does not


def test_nats_accepts_its_configuration(tmp_path: Path) -> None:
    """nats-server itself checks the file (`-t`), as each pod would load it with its own server name."""
    server = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if server is None:
        pytest.skip("nats-server is not installed")
    (config,) = [i for _, i in all_objects() if i["kind"] == "ConfigMap" and i["metadata"]["name"] == "nats-config"]
    path = tmp_path / "nats.conf"
    path.write_text(config["data"]["nats.conf"])
    checked = subprocess.run(
        [server, "-c", str(path), "-t"], env={"SERVER_NAME": "nats-0"}, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    path.write_text(config["data"]["nats.conf"].replace("max_file_store", "max_file_stor"))
    broken = subprocess.run(
        [server, "-c", str(path), "-t"], env={"SERVER_NAME": "nats-0"}, capture_output=True, text=True, timeout=30
    )
    assert broken.returncode != 0  # the check is real: an unknown field fails it
