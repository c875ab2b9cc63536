"""The API resources the generator touches, and their REST paths as the apiserver serves them."""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.model.event import ObjectReference


@dataclass(frozen=True, slots=True)
class Kind:
    """One resource type: its API group and version, plural resource name, object kind and scope."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """`v1` for the core group, `GROUP/VERSION` otherwise (as in an object's apiVersion)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        """`/api/v1` for the core (legacy) group, `/apis/GROUP/VERSION` for named groups."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {kind.resource: kind for kind in kinds}


KINDS: dict[str, Kind] = _kinds(
    Kind("", "v1", "pods", "Pod"),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "configmaps", "ConfigMap"),
    Kind("", "v1", "services", "Service"),
    Kind("", "v1", "endpoints", "Endpoints"),
    Kind("", "v1", "events", "Event"),
    Kind("", "v1", "serviceaccounts", "ServiceAccount"),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    Kind("", "v1", "nodes", "Node", namespaced=False),
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False),
    Kind("apps", "v1", "deployments", "Deployment"),
    Kind("apps", "v1", "replicasets", "ReplicaSet"),
    Kind("apps", "v1", "daemonsets", "DaemonSet"),
    Kind("apps", "v1", "statefulsets", "StatefulSet"),
    Kind("batch", "v1", "jobs", "Job"),
    Kind("batch", "v1", "cronjobs", "CronJob"),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Kind("events.k8s.io", "v1", "events", "Event"),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress"),
    Kind("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Kind("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    Kind("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced=False),
    Kind("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", namespaced=False),
    Kind("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False),
    Kind(
        "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
    ),
    Kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False),
    Kind("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", namespaced=False),
)
CORE_EVENTS = KINDS["events"]
EVENTS_V1 = Kind("events.k8s.io", "v1", "events", "Event")


def resource_path(kind: Kind, namespace: str = "", name: str = "", subresource: str = "") -> str:
    """The request path: `/api/v1/namespaces/NS/pods/NAME/exec`, `/apis/apps/v1/deployments` (all namespaces)…"""
    path = kind.prefix
    if namespace and kind.namespaced:
        path += f"/namespaces/{namespace}"
    path += f"/{kind.resource}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def object_ref(
    kind: Kind,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    uid: str = "",
    resource_version: str = "",
) -> ObjectReference:
    """The event's objectRef for a request on `kind` (apiGroup is empty for the core group)."""
    return ObjectReference(
        resource=kind.resource,
        namespace=namespace if kind.namespaced else "",
        name=name,
        uid=uid,
        apiGroup=kind.group,
        apiVersion=kind.version,
        resourceVersion=resource_version,
        subresource=subresource,
    )
