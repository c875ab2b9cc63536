"""SigmaHQ's GKE rules on GKE audit entries: kubetrail alerts exactly where each rule, read on the LogEntry, matches.

The rules are tests/detect/sigma/gcp_rules/, written after SigmaHQ's `gcp_kubernetes_*` rules (same logsource,
fields, values and modifiers). Each is also written out below as what it means on a LogEntry, and every entry
goes through kubetrail's real GKE intake before the rules see it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.detect.context import EventContext
from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.sigma import load_sigma
from tests.detect.sigma.gke import RULES, contexts, fired, gke_entry, rules_engine

ROLEBINDING = "GKE RoleBinding Or ClusterRoleBinding Changed"
SECRETS = "GKE Secret Changed Or Deleted"
ADMISSION = "GKE Admission Webhook Configuration Written"
CRONJOB = "GKE Job Or CronJob"
BREAK_GLASS = "GKE Pod Created With Break-Glass"


def _method(entry: dict[str, Any]) -> str:
    return str(entry["protoPayload"]["methodName"]).lower()


def _any_glob(*patterns: str) -> Callable[[dict[str, Any]], bool]:
    return lambda entry: any(fnmatchcase(_method(entry), pattern.lower()) for pattern in patterns)


def _admission(entry: dict[str, Any]) -> bool:
    method = _method(entry)
    return (
        method.startswith("admissionregistration.k8s.io.v")
        and any(part in method for part in (".mutatingwebhookconfigurations.", ".validatingwebhookconfigurations."))
        and method.endswith(("create", "patch", "replace"))
    )


def _break_glass(entry: dict[str, Any]) -> bool:
    payload = entry["protoPayload"]
    return (
        payload.get("resource", {}).get("type") == "k8s_cluster"
        and payload.get("logName") in ("cloudaudit.googleapis.com/activity", "cloudaudit.googleapis.com%2Factivity")
        and _method(entry) == "io.k8s.core.v1.pods.create"
        and "image-policy.k8s.io/break-glass" in json.dumps(entry)
    )


MEANING: dict[str, Callable[[dict[str, Any]], bool]] = {
    ROLEBINDING: _any_glob(
        *(f"io.k8s.authorization.rbac.v*.{kind}.{verb}" for verb in ("create", "patch", "update", "delete")
          for kind in ("clusterrolebindings", "rolebindings"))
    ),
    SECRETS: _any_glob(*(f"io.k8s.core.v*.secrets.{verb}" for verb in ("create", "update", "patch", "delete"))),
    ADMISSION: _admission,
    CRONJOB: _any_glob("io.k8s.api.batch.v*.Job", "io.k8s.api.batch.v*.CronJob"),
    BREAK_GLASS: _break_glass,
}  # fmt: skip
"""Each rule's detection, evaluated on the LogEntry itself (case-insensitive globs, as Sigma compares)."""

BINDING = {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "eve"}]}
BREAK_GLASS_POD = {
    "kind": "Pod",
    "metadata": {"name": "hotfix", "annotations": {"alpha.image-policy.k8s.io/break-glass": "true"}},
    "spec": {"containers": [{"name": "c", "image": "registry.example/hotfix:1"}]},
}
RBAC = "rbac.authorization.k8s.io/v1"

# (methodName and resourceName exactly as GKE writes them, the HTTP status, the request body)
REQUESTS: list[tuple[str, str, int, dict[str, Any] | None]] = [
    ("io.k8s.authorization.rbac.v1.clusterrolebindings.create", f"{RBAC}/clusterrolebindings/eve-admin", 201, BINDING),
    ("io.k8s.authorization.rbac.v1.clusterrolebindings.create", f"{RBAC}/clusterrolebindings/eve-admin", 403, BINDING),
    ("io.k8s.authorization.rbac.v1.rolebindings.patch", f"{RBAC}/namespaces/shop/rolebindings/view", 200, None),
    ("io.k8s.authorization.rbac.v1.rolebindings.update", f"{RBAC}/namespaces/shop/rolebindings/view", 200, None),
    ("io.k8s.authorization.rbac.v1.clusterrolebindings.delete", f"{RBAC}/clusterrolebindings/old", 200, None),
    (
        "io.k8s.authorization.rbac.v1beta1.rolebindings.create",
        f"{RBAC}beta1/namespaces/shop/rolebindings/edit",
        201,
        None,
    ),
    ("io.k8s.authorization.rbac.v1.rolebindings.get", f"{RBAC}/namespaces/shop/rolebindings/view", 200, None),
    ("io.k8s.authorization.rbac.v1.clusterrolebindings.list", f"{RBAC}/clusterrolebindings", 200, None),
    ("io.k8s.authorization.rbac.v1.clusterroles.create", f"{RBAC}/clusterroles/sneaky", 201, None),
    ("io.k8s.authorization.rbac.v1.rolebindings.deletecollection", f"{RBAC}/namespaces/shop/rolebindings", 200, None),
    ("io.k8s.core.v1.secrets.create", "core/v1/namespaces/shop/secrets/db", 201, None),
    ("io.k8s.core.v1.secrets.update", "core/v1/namespaces/shop/secrets/db", 200, None),
    ("io.k8s.core.v1.secrets.patch", "core/v1/namespaces/shop/secrets/db", 200, None),
    ("io.k8s.core.v1.secrets.delete", "core/v1/namespaces/shop/secrets/db", 200, None),
    ("io.k8s.core.v1.secrets.delete", "core/v1/namespaces/shop/secrets/gone", 404, None),
    ("io.k8s.core.v1.secrets.get", "core/v1/namespaces/shop/secrets/db", 200, None),
    ("io.k8s.core.v1.secrets.list", "core/v1/namespaces/shop/secrets", 200, None),
    ("io.k8s.core.v1.secrets.watch", "core/v1/namespaces/shop/secrets", 200, None),
    ("io.k8s.core.v1.secrets.deletecollection", "core/v1/namespaces/shop/secrets", 200, None),
    ("io.k8s.core.v1.configmaps.update", "core/v1/namespaces/shop/configmaps/settings", 200, None),
    ("io.k8s.core.v1.serviceaccounts.token.create", "core/v1/namespaces/shop/serviceaccounts/ci/token", 201, None),
    ("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/shop/pods/web-0/exec", 200, None),
    ("io.k8s.core.v1.pods.create", "core/v1/namespaces/shop/pods/hotfix", 201, BREAK_GLASS_POD),
    (
        "io.k8s.admissionregistration.v1.mutatingwebhookconfigurations.create",
        "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inject",
        201,
        None,
    ),
    (
        "io.k8s.admissionregistration.v1.validatingwebhookconfigurations.patch",
        "admissionregistration.k8s.io/v1/validatingwebhookconfigurations/gate",
        200,
        None,
    ),
    ("io.k8s.batch.v1.cronjobs.create", "batch/v1/namespaces/shop/cronjobs/miner", 201, None),
    ("io.k8s.batch.v1.jobs.create", "batch/v1/namespaces/shop/jobs/miner-1", 201, None),
]

ENTRIES = [
    gke_entry(method, resource, audit_id=f"6a9d2b51-0000-4000-8000-{index:012d}", code=code, request=request)
    for index, (method, resource, code, request) in enumerate(REQUESTS)
]


@pytest.fixture(scope="module")
def engine() -> Any:
    return rules_engine()


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{method}-{code}" for method, _, code, _ in REQUESTS])
def test_rules_alert_where_their_meaning_on_the_log_entry_matches(engine: Any, entry: dict[str, Any]) -> None:
    expected = [title for title, meaning in MEANING.items() if meaning(entry)]
    assert sorted(fired(engine, entry)) == sorted(expected)


def test_the_rolebinding_and_secret_rules_fire_and_the_others_never_do_on_what_gke_logs(engine: Any) -> None:
    alerts = [rule for entry in ENTRIES for rule in fired(engine, entry)]
    assert alerts.count(ROLEBINDING) == 6
    assert alerts.count(SECRETS) == 5
    assert ADMISSION not in alerts and CRONJOB not in alerts and BREAK_GLASS not in alerts


def test_the_same_requests_from_an_apiserver_raise_no_gcp_alert(engine: Any) -> None:
    """A GCP audit rule is about GKE's log: an apiserver's own event of the same request is not in it."""
    for entry in ENTRIES:
        (ctx, *_) = contexts(entry)
        native = msgspec.structs.replace(ctx.event, annotations={"authorization.k8s.io/decision": "allow"})
        assert engine.detect(EventContext(native)) == [], entry["protoPayload"]["methodName"]


def test_an_exec_session_is_one_entry_and_one_alert() -> None:
    """GKE logs an exec once; the intake makes it two events (ResponseStarted, ResponseComplete); one alert."""
    rule = (RULES / "gke_secrets_modified_or_deleted.yml").read_text()
    rule = rule.replace("io.k8s.core.v*.secrets.create", "io.k8s.core.v1.pods.exec.create")
    exec_entry = ENTRIES[[method for method, *_ in REQUESTS].index("io.k8s.core.v1.pods.exec.create")]
    assert len(contexts(exec_entry)) == 2
    assert fired(rules_engine(rule, directory=None), exec_entry) == [SECRETS]


KUBERNETES = """title: Secret written
logsource: {product: kubernetes, service: audit}
detection:
    s: {verb: create, objectRef.resource: secrets}
    condition: s
"""
EKS = """title: EKS cluster deleted
logsource: {product: aws, service: cloudtrail}
detection:
    s: {eventSource: eks.amazonaws.com, eventName: DeleteCluster}
    condition: s
"""
AKS = """title: AKS binding written
logsource: {product: azure, service: activitylogs}
detection:
    s: {operationName: MICROSOFT.KUBERNETES/CONNECTEDCLUSTERS/RBAC.AUTHORIZATION.K8S.IO/ROLEBINDINGS/WRITE}
    condition: s
"""


def test_kubernetes_rules_run_beside_gcp_rules_and_other_clouds_are_skipped_with_a_notice() -> None:
    sources = [RuleSource(path.name, path.read_text()) for path in sorted(RULES.glob("*.yml"))]
    sources += [RuleSource("k8s.yml", KUBERNETES), RuleSource("eks.yml", EKS), RuleSource("aks.yml", AKS)]
    sigma = load_sigma(sources)
    assert len(sigma.rules) == 6
    skipped = [str(notice) for notice in sigma.notices if "skipped" in str(notice)]
    assert [text.partition(":")[0] for text in skipped] == ["eks.yml", "aks.yml"]
    assert "product: aws, service: cloudtrail" in skipped[0]
    assert "product: gcp, service: gcp.audit rules on GKE events" in skipped[0]
    secret_create = ENTRIES[[method for method, *_ in REQUESTS].index("io.k8s.core.v1.secrets.create")]
    engine = rules_engine(KUBERNETES, EKS, AKS)
    assert sorted(fired(engine, secret_create)) == [SECRETS, "Secret written"]


def test_the_break_glass_rule_loads_with_notices_for_its_misplaced_fields() -> None:
    rule = (RULES / "gke_break_glass_pod.yml").read_text()
    notices = [str(notice) for notice in load_sigma([RuleSource("bg.yml", rule)]).notices]
    assert len(notices) == 2
    assert "'data.protoPayload.resource.type' is not in an AuditLog payload" in notices[0]
    assert "'data.protoPayload.logName' is not in an AuditLog payload" in notices[1]


def test_detect_command_reads_gke_entries_with_the_gcp_rules(tmp_path: Path) -> None:
    log = tmp_path / "gke.json"
    log.write_text(json.dumps(ENTRIES))
    result = CliRunner().invoke(cli, ["detect", str(log), "--rules", str(RULES), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted({alert["rule"] for alert in alerts}) == [ROLEBINDING, SECRETS]
    assert len(alerts) == 11
    first = alerts[0]
    assert first["cluster"] == "gke-prod"
    assert first["output_fields"]["ka.user.name"] == "alice@example.com"
    assert first["output_fields"]["sigma.id"] == "5b0e1f6c-3a52-4c1e-9d7a-2f1a0c9b7e01"
