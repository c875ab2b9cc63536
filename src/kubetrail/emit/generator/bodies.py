"""Request and response bodies as the apiserver would log them: objects, lists, patches and Status.

Objects carry `metadata.managedFields` like real ones (so omitManagedFields matters); bodies of
objects that did not change are encoded once and reused. Secret values and tokens are random,
obviously fake material of the right shape.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

import msgspec

from kubetrail.emit.generator.clock import Clock
from kubetrail.emit.generator.ids import hex_string, token_like
from kubetrail.emit.generator.workloads import Obj

_encode = msgspec.json.Encoder().encode
Body = dict[str, Any]


def encode(body: Body) -> bytes:
    """Compact JSON, as the apiserver's serializer writes bodies into events."""
    return _encode(body)


def metadata(obj: Obj, clock: Clock, managers: list[Body] | None = None, extra: Body | None = None) -> Body:
    """ObjectMeta of a stored object."""
    meta: Body = {"name": obj.name}
    if obj.namespace and obj.kind.namespaced:
        meta["namespace"] = obj.namespace
    meta["uid"] = obj.uid
    meta["resourceVersion"] = obj.rv
    meta["creationTimestamp"] = clock.seconds(obj.created_us)
    if obj.labels:
        meta["labels"] = obj.labels
    if obj.owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": obj.owner.kind.api_version,
                "kind": obj.owner.kind.kind,
                "name": obj.owner.name,
                "uid": obj.owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    if extra:
        meta.update(extra)
    if managers:
        meta["managedFields"] = managers
    return meta


def managed(manager: str, clock: Clock, at_us: int, fields: Body, *, api_version: str = "v1", sub: str = "") -> Body:
    """One managedFields entry (server-side field ownership)."""
    entry: Body = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": clock.seconds(at_us),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if sub:
        entry["subresource"] = sub
    return entry


def _cached(obj: Obj, build: Callable[[], Body]) -> bytes:
    """The object's body, built once; a write only changes its resourceVersion before re-encoding."""
    if obj.cached is not None and obj.cached[0] == obj.resource_version:
        return obj.cached[1]
    if obj.document is None:
        obj.document = build()
    else:
        obj.document["metadata"]["resourceVersion"] = obj.rv
    data = encode(obj.document)
    obj.cached = (obj.resource_version, data)
    return data


def pod(obj: Obj, clock: Clock) -> bytes:
    """A running pod with its spec, status and the managedFields of its controller and kubelet."""
    return _cached(obj, lambda: pod_body(obj, clock))


def pod_body(obj: Obj, clock: Clock) -> Body:
    """The Pod object as a dict (also the base of the privileged-pod scenario's request body)."""
    image = obj.spec.get("image", f"registry.k8s.io/{obj.app or 'pause'}:v1.30.4")
    port = obj.spec.get("port", 8080)
    ip = obj.spec.get("ip", "10.0.0.10")
    started = clock.seconds(obj.created_us + 4_000_000)
    container_fields: Body = {
        f'k:{{"name":"{obj.app or "app"}"}}': {".": {}, "f:image": {}, "f:name": {}, "f:ports": {}}
    }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata(
            obj,
            clock,
            [
                managed(
                    "kube-controller-manager",
                    clock,
                    obj.created_us,
                    {
                        "f:metadata": {"f:labels": {}, "f:ownerReferences": {}},
                        "f:spec": {"f:containers": container_fields},
                    },
                ),
                managed(
                    "kubelet",
                    clock,
                    obj.created_us + 4_000_000,
                    {"f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:podIP": {}, "f:startTime": {}}},
                    sub="status",
                ),
            ],
            {"generateName": obj.owner.name + "-"} if obj.owner is not None else None,
        ),
        "spec": {
            "volumes": [
                {
                    "name": "kube-api-access-" + obj.uid[:5],
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        ],
                        "defaultMode": 420,
                    },
                }
            ],
            "containers": [
                {
                    "name": obj.app or "app",
                    "image": image,
                    "ports": [{"containerPort": port, "protocol": "TCP"}],
                    "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-" + obj.uid[:5],
                            "readOnly": True,
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        }
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": obj.app or "default",
            "nodeName": obj.node,
            "schedulerName": "default-scheduler",
            "priority": 0,
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "podIP": ip,
            "startTime": clock.seconds(obj.created_us),
            "containerStatuses": [
                {
                    "name": obj.app or "app",
                    "ready": True,
                    "restartCount": 0,
                    "image": image,
                    "containerID": "containerd://" + hex_string(random.Random(obj.uid), 64),
                    "started": True,
                    "state": {"running": {"startedAt": started}},
                }
            ],
            "qosClass": "Burstable",
        },
    }


def deployment(obj: Obj, clock: Clock) -> bytes:
    """A Deployment with its pod template and rollout status."""
    return _cached(obj, lambda: deployment_body(obj, clock))


def deployment_body(obj: Obj, clock: Clock) -> Body:
    """The Deployment as a dict (the CI's apply patch is built from it)."""
    spec = obj.spec
    replicas = spec.get("replicas", 1)
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": metadata(
            obj,
            clock,
            [
                managed(
                    "kubectl",
                    clock,
                    obj.created_us,
                    {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}},
                    api_version="apps/v1",
                ),
                managed(
                    "kube-controller-manager",
                    clock,
                    obj.created_us + 2_000_000,
                    {"f:status": {"f:availableReplicas": {}, "f:conditions": {}, "f:readyReplicas": {}}},
                    api_version="apps/v1",
                    sub="status",
                ),
            ],
            {
                "generation": spec.get("generation", 1),
                "annotations": {"deployment.kubernetes.io/revision": str(spec.get("generation", 1))},
            },
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": obj.name}},
            "template": {
                "metadata": {"labels": {"app": obj.name}},
                "spec": {
                    "containers": [
                        {
                            "name": obj.name,
                            "image": spec.get("image", "nginx:1.27.1"),
                            "ports": [{"containerPort": spec.get("port", 8080), "protocol": "TCP"}],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    "restartPolicy": "Always",
                    "serviceAccountName": obj.name,
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
        },
        "status": {
            "observedGeneration": spec.get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def secret(obj: Obj, clock: Clock) -> bytes:
    """A Secret whose values are random base64 (shaped like credentials, worth nothing)."""

    def build() -> Body:
        rng = random.Random(obj.uid)
        if obj.name.endswith("-tls"):
            kind = "kubernetes.io/tls"
            data = {"tls.crt": _b64(token_like(rng, 900)), "tls.key": _b64(token_like(rng, 1200))}
        elif obj.name.startswith("bootstrap-token-"):
            kind = "bootstrap.kubernetes.io/token"
            data = {"token-id": _b64(obj.name[-6:]), "token-secret": _b64(token_like(rng, 16).lower())}
        else:
            kind = "Opaque"
            data = {"username": _b64(obj.app or "admin"), "password": _b64(token_like(rng, 24))}
        return {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": metadata(obj, clock, [managed("kubectl", clock, obj.created_us, {"f:data": {}, "f:type": {}})]),
            "data": data,
            "type": kind,
        }

    return _cached(obj, build)


def configmap(obj: Obj, clock: Clock) -> bytes:
    """A ConfigMap (the root CA bundle or an app's settings)."""

    def build() -> Body:
        rng = random.Random(obj.uid)
        if obj.name == "kube-root-ca.crt":
            pem = token_like(rng, 1000)
            data = {"ca.crt": "-----BEGIN CERTIFICATE-----\n" + pem + "\n-----END CERTIFICATE-----\n"}
        else:
            data = {
                "LOG_LEVEL": "info",
                "FEATURE_FLAGS": "checkout-v2,fast-search",
                "UPSTREAM": f"http://{obj.app}:8080",
            }
        return {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": metadata(obj, clock, [managed("kubectl", clock, obj.created_us, {"f:data": {}})]),
            "data": data,
        }

    return _cached(obj, build)


def generic(obj: Obj, clock: Clock) -> bytes:
    """Any other object: metadata plus a small spec."""

    def build() -> Body:
        body: Body = {"kind": obj.kind.kind, "apiVersion": obj.kind.api_version, "metadata": metadata(obj, clock)}
        if obj.kind.resource == "services":
            port = obj.spec.get("port", 443)
            body["spec"] = {
                "ports": [{"protocol": "TCP", "port": port, "targetPort": port}],
                "selector": {"app": obj.app} if obj.app else {},
                "clusterIP": obj.spec.get("clusterIP", "10.96.0.1"),
                "type": "ClusterIP",
            }
        return body

    return _cached(obj, build)


def object_body(obj: Obj, clock: Clock) -> bytes:
    """The body of any stored object, dispatched by resource."""
    resource = obj.kind.resource
    if resource == "pods":
        return pod(obj, clock)
    if resource == "deployments":
        return deployment(obj, clock)
    if resource == "secrets":
        return secret(obj, clock)
    if resource == "configmaps":
        return configmap(obj, clock)
    return generic(obj, clock)


def object_list(list_kind: str, api_version: str, resource_version: int, items: list[bytes]) -> bytes:
    """A list response (`PodList`, …) built from already encoded items."""
    head = f'{{"kind":"{list_kind}","apiVersion":"{api_version}","metadata":{{"resourceVersion":"{resource_version}"}},'
    return head.encode() + b'"items":[' + b",".join(items) + b"]}"


_RV_SLOT = "\u0000rv\u0000"
_RENEW_SLOT = "\u0000renew\u0000"
_lease_templates: dict[tuple[str, str, int], tuple[bytes, bytes, bytes]] = {}


def lease(
    obj: Obj, clock: Clock, holder: str, now_us: int, duration: int, *, manager: str, node_uid: str = ""
) -> bytes:
    """A Lease as leader election and heartbeats renew it (encoded once; then only two values change).

    A node's lease is owned by its Node (`node_uid`); leader-election leases record their acquisition.
    """
    key = (obj.uid, holder, duration)
    template = _lease_templates.get(key)
    if template is None:
        if len(_lease_templates) > 10_000:
            _lease_templates.clear()
        template = _lease_templates[key] = _lease_template(obj, clock, holder, duration, manager, node_uid)
    head, middle, tail = template
    return b"".join((head, obj.rv.encode(), middle, clock.micro(now_us).encode(), tail))


def _lease_template(
    obj: Obj, clock: Clock, holder: str, duration: int, manager: str, node_uid: str
) -> tuple[bytes, bytes, bytes]:
    fields: Body = {"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}, "f:renewTime": {}}}
    extra: Body = {}
    if node_uid:
        extra["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": obj.name, "uid": node_uid}]
        fields["f:metadata"] = {"f:ownerReferences": {'k:{"uid":"' + node_uid + '"}': {}}}
    spec: Body = {"holderIdentity": holder, "leaseDurationSeconds": duration}
    if obj.namespace == "kube-system" and duration < 60:
        spec["acquireTime"] = clock.micro(obj.created_us)
        spec["leaseTransitions"] = 3
    spec["renewTime"] = _RENEW_SLOT
    meta: Body = {
        "name": obj.name,
        "namespace": obj.namespace,
        "uid": obj.uid,
        "resourceVersion": _RV_SLOT,
        "creationTimestamp": clock.seconds(obj.created_us),
        **extra,
        "managedFields": [managed(manager, clock, obj.created_us, fields, api_version="coordination.k8s.io/v1")],
    }
    data = encode({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": meta, "spec": spec})
    head, rest = data.split(_RV_SLOT.encode("utf-8").replace(b"\x00", b"\\u0000"), 1)
    middle, tail = rest.split(_RENEW_SLOT.encode("utf-8").replace(b"\x00", b"\\u0000"), 1)
    return head, middle, tail


def node_status_patch(clock: Clock, now_us: int) -> bytes:
    """The strategic-merge patch a kubelet sends to refresh its node's condition heartbeats."""
    beat = clock.seconds(now_us)
    kinds = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    return encode(
        {
            "status": {
                "$setElementOrder/conditions": [{"type": kind} for kind in kinds],
                "conditions": [{"lastHeartbeatTime": beat, "type": kind} for kind in kinds],
            }
        }
    )


def node(obj: Obj, clock: Clock, now_us: int, ip: str) -> bytes:
    """A Node with its conditions, capacity and node info."""
    beat = clock.seconds(now_us)
    return encode(
        {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": metadata(
                obj,
                clock,
                [managed("kubelet", clock, now_us, {"f:status": {"f:conditions": {}, "f:images": {}}}, sub="status")],
                {"labels": {"kubernetes.io/hostname": obj.name, "kubernetes.io/os": "linux"}},
            ),
            "spec": {"podCIDR": "10.244.0.0/24", "providerID": f"kind://docker/cluster/{obj.name}"},
            "status": {
                "capacity": {"cpu": "4", "memory": "16318504Ki", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "16216104Ki", "pods": "110"},
                "conditions": [
                    {
                        "type": kind,
                        "status": "True" if kind == "Ready" else "False",
                        "lastHeartbeatTime": beat,
                        "lastTransitionTime": clock.seconds(obj.created_us),
                        "reason": reason,
                    }
                    for kind, reason in (
                        ("MemoryPressure", "KubeletHasSufficientMemory"),
                        ("DiskPressure", "KubeletHasNoDiskPressure"),
                        ("PIDPressure", "KubeletHasSufficientPID"),
                        ("Ready", "KubeletReady"),
                    )
                ],
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": obj.name}],
                "nodeInfo": {
                    "kernelVersion": "6.1.0-25-amd64",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.18",
                    "kubeletVersion": "v1.30.4",
                    "kubeProxyVersion": "v1.30.4",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }
    )


def status(code: int, reason: str = "", message: str = "", details: Body | None = None) -> bytes:
    """A metav1.Status response body (success or failure)."""
    body: Body = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    if code >= 400:
        body["status"] = "Failure"
        body["message"] = message
        body["reason"] = reason
        if details is not None:
            body["details"] = details
    else:
        body["status"] = "Success"
    body["code"] = code
    return encode(body)


def event_object(clock: Clock, now_us: int, involved: Obj, reason: str, message: str, source: str, name: str) -> bytes:
    """A core/v1 Event object, as controllers and kubelets post them."""
    return encode(
        {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": involved.namespace or "default", "creationTimestamp": None},
            "involvedObject": {
                "kind": involved.kind.kind,
                "namespace": involved.namespace,
                "name": involved.name,
                "uid": involved.uid,
                "apiVersion": involved.kind.api_version,
                "resourceVersion": involved.rv,
            },
            "reason": reason,
            "message": message,
            "source": {"component": source},
            "firstTimestamp": clock.seconds(now_us),
            "lastTimestamp": clock.seconds(now_us),
            "count": 1,
            "type": "Normal",
            "eventTime": None,
            "reportingComponent": source,
            "reportingInstance": "",
        }
    )


def exec_options(command: list[str], container: str, tty: bool) -> bytes:
    """PodExecOptions, logged as the request object of `pods/exec`."""
    return encode(
        {
            "kind": "PodExecOptions",
            "apiVersion": "v1",
            "stdin": True,
            "stdout": True,
            "stderr": not tty,
            "tty": tty,
            "container": container,
            "command": command,
        }
    )


def token_request(rng: random.Random, clock: Clock, now_us: int, audience: str, seconds: int) -> tuple[bytes, bytes]:
    """A TokenRequest and its response; the token is random JWT-shaped text."""
    request = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"audiences": [audience], "expirationSeconds": seconds, "boundObjectRef": None},
        "status": {"token": "", "expirationTimestamp": None},
    }
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6I" + ".".join(token_like(rng, n) for n in (40, 300, 342))
    response = dict(request)
    response["metadata"] = {"creationTimestamp": clock.seconds(now_us)}
    response["status"] = {"token": token, "expirationTimestamp": clock.seconds(now_us + seconds * 1_000_000)}
    return encode(request), encode(response)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
