"""GCP audit field names read from GKE events: each rebuilt field equals what the original LogEntry held."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubetrail.detect.rulefile import RuleSource
from kubetrail.detect.sigma import load_sigma
from kubetrail.detect.sigma.gcp import gcp_field, method_name, resource_name, rpc_code
from kubetrail.intake.gke import RPC_TO_HTTP, object_ref
from kubetrail.model import ObjectReference
from tests.detect.helpers import context
from tests.detect.sigma.gke import contexts, gke_entry, rules_engine, value_at

# Method and resource names as GKE writes them (seen in Cloud Logging entries and Google's documentation).
GKE_NAMES = [
    ("io.k8s.core.v1.pods.create", "core/v1/namespaces/shop/pods/web-0"),
    ("io.k8s.core.v1.pods.status.patch", "core/v1/namespaces/shop/pods/web-0/status"),
    ("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/shop/pods/web-0/exec"),
    ("io.k8s.core.v1.pods.binding.create", "core/v1/namespaces/shop/pods/web-0/binding"),
    ("io.k8s.core.v1.configmaps.list", "core/v1/namespaces/shop/configmaps"),
    ("io.k8s.core.v1.namespaces.create", "core/v1/namespaces/shop"),
    ("io.k8s.core.v1.namespaces.finalize.update", "core/v1/namespaces/shop/finalize"),
    ("io.k8s.core.v1.nodes.list", "core/v1/nodes"),
    ("io.k8s.apps.v1.deployments.scale.update", "apps/v1/namespaces/kube-system/deployments/coredns/scale"),
    ("io.k8s.apps.v1.deployments.deletecollection", "apps/v1/namespaces/knative-serving/deployments"),
    ("io.k8s.batch.v1.jobs.create", "batch/v1/namespaces/shop/jobs/nightly"),
    ("io.k8s.authorization.rbac.v1.clusterrolebindings.create", "rbac.authorization.k8s.io/v1/clusterrolebindings/x"),
    ("io.k8s.authorization.rbac.v1.roles.create", "rbac.authorization.k8s.io/v1/namespaces/shop/roles/reader"),
    ("io.k8s.storage.v1.storageclasses.list", "storage.k8s.io/v1/storageclasses"),
    ("io.k8s.apiextensions.v1.customresourcedefinitions.get", "apiextensions.k8s.io/v1/customresourcedefinitions/a.b"),
    ("io.k8s.apiregistration.v1.apiservices.create", "apiregistration.k8s.io/v1/apiservices/v1.metrics.k8s.io"),
    ("io.gke.networking.v1.gcpinferencepoolimports.list", "networking.gke.io/v1/namespaces/ai/gcpinferencepoolimports"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "resource"), GKE_NAMES)
def test_method_and_resource_names_are_rebuilt_as_gke_writes_them(method: str, resource: str) -> None:
    ref, _ = object_ref(resource)
    assert resource_name(ref) == resource
    assert method_name(ref, method.rsplit(".", 1)[1]) == method


_SEGMENT = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True).filter(
    lambda text: text not in ("namespaces", "status", "finalize")
)
_GROUP = st.one_of(st.just("core"), _SEGMENT, st.lists(_SEGMENT, min_size=2, max_size=4).map(".".join))


@given(
    group=_GROUP,
    version=st.from_regex(r"v[1-9](alpha[1-9]|beta[1-9])?", fullmatch=True),
    namespace=st.none() | _SEGMENT,
    resource=_SEGMENT,
    name=st.none() | _SEGMENT,
    subresource=st.none() | _SEGMENT,
)
def test_resource_name_inverts_the_intakes_parser(
    group: str, version: str, namespace: str | None, resource: str, name: str | None, subresource: str | None
) -> None:
    parts = [group, version, *(["namespaces", namespace] if namespace else []), resource]
    parts += [name, *([subresource] if subresource else [])] if name else []
    written = "/".join(parts)
    ref, _ = object_ref(written)
    assert resource_name(ref) == written


def test_no_object_means_no_method_or_resource_name() -> None:
    assert method_name(None, "get") == resource_name(None) == ""
    assert method_name(ObjectReference(resource="pods"), "get") == ""


def test_status_codes_come_back_as_the_google_rpc_codes_the_intake_read() -> None:
    for rpc, http in RPC_TO_HTTP.items():
        assert RPC_TO_HTTP[rpc_code(http)] == http, rpc
    statuses = (200, 201, 101, 403, 404, 401, 409, 422, 429, 503)
    assert [rpc_code(http) for http in statuses] == [0, 0, 0, 7, 5, 16, 6, 3, 8, 14]
    assert (rpc_code(418), rpc_code(507)) == (9, 2)  # FAILED_PRECONDITION, UNKNOWN


# Each GCP field name in the spellings rules use, and the LogEntry path it names.
FIELDS = [
    ("protoPayload.methodName", "protoPayload.methodName"),
    ("data.protoPayload.methodName", "protoPayload.methodName"),
    ("gcp.audit.method_name", "protoPayload.methodName"),
    ("protoPayload.resourceName", "protoPayload.resourceName"),
    ("gcp.audit.resource_name", "protoPayload.resourceName"),
    ("protoPayload.serviceName", "protoPayload.serviceName"),
    ("gcp.audit.service_name", "protoPayload.serviceName"),
    ("protoPayload.@type", "protoPayload.@type"),
    ("gcp.audit.type", "protoPayload.@type"),
    ("protoPayload.authenticationInfo.principalEmail", "protoPayload.authenticationInfo.principalEmail"),
    ("gcp.audit.authentication_info.principal_email", "protoPayload.authenticationInfo.principalEmail"),
    ("protoPayload.authorizationInfo.granted", "protoPayload.authorizationInfo.granted"),
    ("gcp.audit.authorization_info.granted", "protoPayload.authorizationInfo.granted"),
    ("protoPayload.authorizationInfo.permission", "protoPayload.authorizationInfo.permission"),
    ("gcp.audit.authorization_info.permission", "protoPayload.authorizationInfo.permission"),
    ("protoPayload.authorizationInfo.resource", "protoPayload.authorizationInfo.resource"),
    ("gcp.audit.authorization_info.resource", "protoPayload.authorizationInfo.resource"),
    ("protoPayload.requestMetadata.callerIp", "protoPayload.requestMetadata.callerIp"),
    ("gcp.audit.request_metadata.caller_ip", "protoPayload.requestMetadata.callerIp"),
    ("protoPayload.requestMetadata.callerSuppliedUserAgent", "protoPayload.requestMetadata.callerSuppliedUserAgent"),
    ("gcp.audit.request_metadata.caller_supplied_user_agent", "protoPayload.requestMetadata.callerSuppliedUserAgent"),
    ("protoPayload.status.code", "protoPayload.status.code"),
    ("gcp.audit.status.code", "protoPayload.status.code"),
    ("logName", "logName"),
    ("data.logName", "logName"),
    ("insertId", "insertId"),
    ("operation.id", "operation.id"),
    ("gcp.audit.logentry_operation.id", "operation.id"),
    ("operation.producer", "operation.producer"),
    ("resource.type", "resource.type"),
    ("resource.labels.cluster_name", "resource.labels.cluster_name"),
    ("resource.labels.project_id", "resource.labels.project_id"),
    ("resource.labels.location", "resource.labels.location"),
    ("labels.authorization.k8s.io/decision", "labels.authorization.k8s.io/decision"),
]


def _rule(field: str, value: Any) -> str:
    return yaml.safe_dump(
        {
            "title": "probe",
            "id": "5b0e1f6c-3a52-4c1e-9d7a-2f1a0c9b7e10",
            "logsource": {"product": "gcp", "service": "gcp.audit"},
            "detection": {"selection": {field: value}, "condition": "selection"},
        }
    )


def _matches(field: str, value: Any, entry: dict[str, Any]) -> bool:
    engine = rules_engine(_rule(field, value), directory=None)
    return any(engine.detect(ctx) for ctx in contexts(entry))


_DENIED_BINDING = gke_entry(
    "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
    "rbac.authorization.k8s.io/v1/clusterrolebindings/dev-admin",
    user="mallory@example.com",
    ip="198.51.100.23",
    code=403,
    request={"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"name": "mallory"}]},
)
_SECRET_READ = gke_entry("io.k8s.core.v1.secrets.get", "core/v1/namespaces/shop/secrets/db")


@pytest.mark.parametrize("entry", [_DENIED_BINDING, _SECRET_READ], ids=["denied-binding", "secret-read"])
@pytest.mark.parametrize(("field", "path"), FIELDS)
def test_each_field_matches_the_value_the_entry_held(field: str, path: str, entry: dict[str, Any]) -> None:
    value = value_at(entry, path)
    assert _matches(field, value, entry)
    other = not value if isinstance(value, bool) else value + 1 if isinstance(value, int) else f"{value}x"
    assert not _matches(field, other, entry)


def test_request_and_response_bodies_are_read_under_protopayload() -> None:
    assert _matches("protoPayload.request.roleRef.name", "cluster-admin", _DENIED_BINDING)
    assert _matches("gcp.audit.request.subjects.name", "mallory", _DENIED_BINDING)
    assert not _matches("protoPayload.response.roleRef.name", "cluster-admin", _DENIED_BINDING)
    assert _matches("protoPayload.status.message", "denied", _DENIED_BINDING)
    assert _matches("protoPayload.requestMetadata.callerIp|cidr", "198.51.100.0/24", _DENIED_BINDING)


def _real_entries(corpus: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((corpus / "gke-khi").glob("*.yaml"))]


@pytest.mark.parametrize(("field", "path"), FIELDS)
def test_real_gke_entries_give_back_their_own_values(corpus: Path, field: str, path: str) -> None:
    for entry in _real_entries(corpus):
        (ctx,) = contexts(entry)
        expected = value_at(entry, path)
        assert gcp_field(field).getter(ctx) == (expected,), (entry["insertId"], field)


def test_gcp_fields_need_an_event_converted_from_gke() -> None:
    """The same request written by an apiserver is not a GCP audit entry: GCP rules leave it alone."""
    rule = _rule("gcp.audit.method_name", "io.k8s.core.v1.pods.create")
    assert rules_engine(rule, directory=None).detect(context()) == []
    entry = gke_entry("io.k8s.core.v1.pods.create", "core/v1/namespaces/default/pods/web")
    assert _matches("gcp.audit.method_name", "io.k8s.core.v1.pods.create", entry)


def _notices(field: str, value: Any = "x") -> list[str]:
    return [str(notice) for notice in load_sigma([RuleSource("gcp.yml", _rule(field, value))]).notices]


@pytest.mark.parametrize(
    "field",
    ["severity", "timestamp", "protoPayload.authenticationInfo.principalSubject", "gcp.audit.num_response_items",
     "protoPayload.request.@type", "objectRef.resource", "verb"],
)  # fmt: skip
def test_fields_the_conversion_drops_are_named_when_the_rule_loads_and_read_as_absent(field: str) -> None:
    (notice,) = _notices(field)
    assert notice.startswith("gcp.yml: Sigma rule probe (5b0e1f6c-3a52-4c1e-9d7a-2f1a0c9b7e10)")
    assert f"field '{field}' cannot be rebuilt from GKE events" in notice
    entry = gke_entry("io.k8s.core.v1.pods.create", "core/v1/namespaces/default/pods/web")
    assert not _matches(field, "create", entry)
    assert _matches(f"{field}|exists", False, entry)


def test_logentry_fields_written_under_protopayload_are_read_from_the_entry_with_a_notice() -> None:
    (notice,) = _notices("data.protoPayload.resource.type", "k8s_cluster")
    assert "field 'data.protoPayload.resource.type' is not in an AuditLog payload" in notice
    assert "read as the LogEntry's 'resource.type'" in notice
    assert _matches("data.protoPayload.resource.type", "k8s_cluster", _SECRET_READ)
    assert _matches("protoPayload.logName|endswith", "%2Fdata_access", _SECRET_READ)


def test_rebuilt_fields_need_no_notice() -> None:
    assert [_notices(field) for field, _ in FIELDS] == [[] for _ in FIELDS]


def test_a_correlation_groups_gcp_rules_by_their_own_field_names() -> None:
    rule = _rule("gcp.audit.method_name|endswith", ".secrets.get").replace("title: probe", "title: probe\nname: reads")
    correlation = json.dumps(
        {
            "title": "Secret sweep",
            "id": "5b0e1f6c-3a52-4c1e-9d7a-2f1a0c9b7e11",
            "correlation": {
                "type": "value_count",
                "rules": ["reads"],
                "group-by": ["gcp.audit.authentication_info.principal_email"],
                "timespan": "5m",
                "condition": {"field": "protoPayload.resourceName", "gte": 3},
            },
        }
    )
    sigma = load_sigma([RuleSource("c.yml", rule + "---\n" + correlation)])
    assert sigma.notices == []
    (spec,) = sigma.correlations
    (ctx,) = contexts(_SECRET_READ)
    assert spec.accessors["gcp.audit.authentication_info.principal_email"](ctx) == "alice@example.com"
    assert spec.accessors["protoPayload.resourceName"](ctx) == "core/v1/namespaces/shop/secrets/db"
