"""The ka.*, jevt.* and json.* fields: values as Falco's k8saudit and json plugins extract them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetrail.detect import FIELDS
from kubetrail.detect.codegen import INLINE_ANNOTATIONS, INLINE_FIELDS
from kubetrail.detect.context import EventContext
from kubetrail.detect.fields import Value, accessor_for
from kubetrail.model import decode_event
from tests.detect.helpers import REMOVE, context, event_dict

POD: dict[str, Any] = {
    "kind": "Pod",
    "metadata": {"name": "web"},
    "spec": {
        "hostNetwork": True,
        "securityContext": {"runAsUser": 1000, "supplementalGroups": [5, 6]},
        "initContainers": [{"name": "init", "image": "busybox:1.36", "securityContext": {"privileged": True}}],
        "containers": [
            {
                "name": "app",
                "image": "nginx:1.25",
                "command": ["nginx", "-g"],
                "args": ["daemon off;"],
                "ports": [{"containerPort": 80}, {"containerPort": 443, "hostPort": 8443}],
                "securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}},
            },
            {
                "name": "sidecar",
                "image": "registry.example.com:5000/tools/dbg@sha256:abc",
                "securityContext": {"privileged": False, "allowPrivilegeEscalation": True},
            },
        ],
        "volumes": [
            {"name": "etc", "hostPath": {"path": "/etc/kubernetes", "type": ""}},
            {"name": "data", "emptyDir": {}},
            {"name": "flex", "flexVolume": {"driver": "example/lvm"}},
        ],
    },
}


def value(ctx: EventContext, field: str) -> Value:
    name, _, rest = field.partition("[")
    return accessor_for(name, rest[:-1] if rest else None)(ctx)


@pytest.fixture
def pod() -> EventContext:
    return context(
        requestObject=POD,
        responseObject={"kind": "Pod", "metadata": {"name": "web-7d9f"}},
        impersonatedUser={"username": "alice"},
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("ka.auditid", "0b1c2d3e-0000-4000-8000-000000000001"),
        ("ka.stage", "ResponseComplete"),
        ("ka.auth.decision", "allow"),
        ("ka.auth.reason", "RBAC: allowed"),
        ("ka.user.name", "jane"),
        ("ka.user.groups", ["dev", "system:authenticated"]),
        ("ka.impuser.name", "alice"),
        ("ka.verb", "create"),
        ("ka.uri", "/api/v1/namespaces/default/pods"),
        ("ka.target.name", "web"),
        ("ka.target.namespace", "default"),
        ("ka.target.resource", "pods"),
        ("ka.target.subresource", None),
        ("ka.target.pod.name", "web"),
        ("ka.useragent", "kubectl/v1.29.0"),
        ("ka.sourceips", ["10.0.0.7"]),
        ("ka.sourceips[0]", ["10.0.0.7"]),
        ("ka.sourceips[1]", None),
        ("ka.response.code", "201"),
        ("ka.response.reason", None),
        ("ka.resp.name", "web-7d9f"),
        ("ka.cluster.name", None),
        ("ka.req.pod.containers.name", ["app", "sidecar"]),
        ("ka.req.pod.containers.image", ["nginx:1.25", "registry.example.com:5000/tools/dbg@sha256:abc"]),
        ("ka.req.pod.containers.image[1]", ["registry.example.com:5000/tools/dbg@sha256:abc"]),
        ("ka.req.pod.containers.image[2]", None),
        ("ka.req.pod.containers.image.repository", ["nginx", "registry.example.com"]),
        ("ka.req.container.image", "nginx:1.25"),
        ("ka.req.container.image.repository", "nginx"),
        ("ka.req.pod.containers.privileged", ["false"]),
        ("ka.req.container.privileged", "false"),
        ("ka.req.pod.initContainers.privileged", ["true"]),
        ("ka.req.pod.initContainers.image", ["busybox:1.36"]),
        ("ka.req.pod.ephemeralContainers.image", None),
        ("ka.req.pod.containers.allow_privilege_escalation", ["true"]),
        ("ka.req.pod.containers.run_as_user", ["0"]),
        ("ka.req.pod.containers.eff_run_as_user", ["0", "1000"]),
        ("ka.req.pod.containers.eff_run_as_group", ["0", "0"]),
        ("ka.req.pod.containers.host_port", ["80", "8443"]),
        ("ka.req.pod.containers.add_capabilities", ["NET_ADMIN", "SYS_TIME"]),
        ("ka.req.pod.containers.command", ["nginx", "-g"]),
        ("ka.req.pod.containers.args", ["daemon off;"]),
        ("ka.req.pod.host_network", "true"),
        ("ka.req.container.host_network", "true"),
        ("ka.req.pod.host_pid", None),
        ("ka.req.pod.run_as_user", "1000"),
        ("ka.req.pod.supplemental_groups", ["5", "6"]),
        ("ka.req.pod.volumes.hostpath", ["/etc/kubernetes"]),
        ("ka.req.pod.volumes.flexvolume_driver", ["example/lvm"]),
        ("ka.req.pod.volumes.volume_type", ["hostPath", "emptyDir", "flexVolume"]),
        ("ka.req.volume.hostpath[/etc/kubernetes]", "true"),
        ("ka.req.volume.hostpath[/etc*]", "true"),
        ("ka.req.volume.hostpath[/etc]", "false"),
        ("jevt.value[/stage]", "ResponseComplete"),
        ("jevt.value[/objectRef/resource]", "pods"),
        ("jevt.value[/annotations/authorization.k8s.io~1decision]", "allow"),
        ("jevt.value[/user/groups]", '["dev","system:authenticated"]'),
        ("jevt.value[/requestObject/spec/containers/0/image]", "nginx:1.25"),
        ("jevt.value[/requestObject/spec/hostNetwork]", "true"),
        ("jevt.value[/requestObject/spec/nothing]", None),
        ("json.value[/verb]", "create"),
        ("jevt.rawtime", "1714557600250000000"),
        ("json.rawtime", "1714557600250000000"),
    ],
)
def test_pod_creation_fields(pod: EventContext, field: str, expected: Value) -> None:
    assert value(pod, field) == expected


def test_uri_parameters_are_url_decoded_and_the_first_value_wins() -> None:
    ctx = context(requestURI="/api/v1/namespaces/d/pods/p/exec?command=sh&command=-c&command=id%3B+ls&stdin=true&tty=")
    assert value(ctx, "ka.uri.param[command]") == "sh"
    assert value(ctx, "ka.uri.param[tty]") == ""
    assert value(ctx, "ka.uri.param[container]") is None


def test_a_container_without_an_image_makes_the_image_fields_missing() -> None:
    ctx = context(requestObject={"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}})
    assert value(ctx, "ka.req.pod.containers.image") is None
    assert value(ctx, "ka.req.pod.containers.name") == ["a", "b"]


def test_binding_role_and_subject_fields() -> None:
    binding = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [
            {"kind": "User", "name": "jane"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
            {"kind": "Group", "name": "ops"},
        ],
    }
    ctx = context(requestObject=binding, objectRef={"resource": "clusterrolebindings", "name": "b"})
    assert value(ctx, "ka.req.binding.role") == "cluster-admin"
    assert value(ctx, "ka.req.binding.subjects") == [
        '{"kind":"User","name":"jane"}',
        '{"kind":"ServiceAccount","name":"ci","namespace":"build"}',
        '{"kind":"Group","name":"ops"}',
    ]
    assert value(ctx, "ka.req.binding.subjects.user_names") == ["jane"]
    assert value(ctx, "ka.req.binding.subjects.serviceaccount_names") == ["ci"]
    assert value(ctx, "ka.req.binding.subjects.serviceaccount_ns_names") == ["build:ci"]
    assert value(ctx, "ka.req.binding.subjects.group_names") == ["ops"]
    assert value(ctx, "ka.target.pod.name") is None


def test_role_rule_fields_flatten_every_rule() -> None:
    role = {
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        ]
    }
    ctx = context(requestObject=role)
    assert value(ctx, "ka.req.role.rules.verbs") == ["get", "create", "get"]
    assert value(ctx, "ka.req.role.rules.resources") == ["pods", "pods/exec"]
    assert value(ctx, "ka.req.role.rules.apiGroups") == [""]
    assert value(ctx, "ka.req.role.rules.nonResourceURLs") == ["/healthz"]
    assert value(ctx, "ka.req.role.rules.verbs[1]") == ["get"]
    assert value(ctx, "ka.req.role.rules") == [json.dumps(rule, separators=(",", ":")) for rule in role["rules"]]
    no_rules = context(requestObject={"kind": "Role"})
    assert value(no_rules, "ka.req.role.rules.verbs") is None


def test_service_and_configmap_fields() -> None:
    service = {"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}
    ctx = context(requestObject=service)
    assert value(ctx, "ka.req.service.type") == "NodePort"
    assert value(ctx, "ka.req.service.ports") == ['[{"port":80,"nodePort":30080}]']
    configmap = context(
        requestObject={"data": {"password": "x\ny"}}, objectRef={"resource": "configmaps", "name": "settings"}
    )
    assert value(configmap, "ka.req.configmap.name") == "settings"
    assert value(configmap, "ka.req.configmap.obj") == '{"password":"x\\ny"}'


def test_request_fields_are_missing_without_a_request_object() -> None:
    ctx = context()
    for field in ("ka.req.pod.containers.image", "ka.req.pod.host_network", "ka.req.binding.role", "ka.resp.name"):
        assert value(ctx, field) is None, field


def test_missing_top_level_parts() -> None:
    ctx = context(objectRef=REMOVE, responseStatus=REMOVE, annotations=REMOVE, userAgent=REMOVE, sourceIPs=REMOVE)
    for field in ("ka.target.resource", "ka.response.code", "ka.auth.decision", "ka.useragent", "ka.sourceips"):
        assert value(ctx, field) is None, field


def test_json_fields_see_the_original_document_when_it_is_kept() -> None:
    data = event_dict(apiVersion="audit.k8s.io/v1beta1", timestamp="2024-05-01T10:00:00Z")
    raw = json.dumps(data).encode()
    with_raw = EventContext(decode_event(raw), "", raw)
    assert value(with_raw, "jevt.value[/timestamp]") == "2024-05-01T10:00:00Z"
    assert value(with_raw, "jevt.value[/apiVersion]") == "audit.k8s.io/v1beta1"
    without_raw = EventContext(decode_event(raw))
    assert value(without_raw, "jevt.value[/timestamp]") is None
    obj = value(with_raw, "jevt.obj")
    assert isinstance(obj, str)
    assert json.loads(obj) == data
    assert obj.startswith('{\n  "kind": "Event",\n  "apiVersion": ')


def test_the_cluster_label_is_a_field() -> None:
    ctx = EventContext(decode_event(json.dumps(event_dict()).encode()), "prod-eu")
    assert value(ctx, "ka.cluster.name") == "prod-eu"


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"user": {}, "userAgent": REMOVE, "annotations": REMOVE},
        {"annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}},
        {"stage": "RequestReceived", "verb": "get"},
        {"impersonatedUser": {"username": "admin", "groups": ["system:masters"]}},
        {"impersonatedUser": {}, "sourceIPs": [], "user": {"username": "jane", "groups": []}},
        {"responseStatus": {"code": 0}},
        {"responseStatus": {"metadata": {}}, "user": {"username": "jane", "groups": ["a", "b"]}},
    ],
)
def test_inline_field_reads_equal_the_accessors(changes: dict[str, Any]) -> None:
    ctx = context(**changes)
    e = ctx.event
    for field, expression in INLINE_FIELDS.items():
        assert eval(expression, {"e": e}) == value(ctx, field), field
    for field, key in INLINE_ANNOTATIONS.items():
        assert e.annotations.get(key) == value(ctx, field)


def test_every_field_has_a_path_and_a_description() -> None:
    for spec in FIELDS.values():
        assert spec.path and spec.description.endswith((".", ")")), spec.name


def test_every_field_is_documented_with_its_path() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "fields.md").read_text()
    for spec in FIELDS.values():
        assert f"| `{spec.name}` |" in text, spec.name
        assert f"`{spec.path}`" in text, spec.name
