"""Who talks to the apiserver of a small cluster: control-plane components, kubelets, add-ons, CI and people."""

from __future__ import annotations

import random
from dataclasses import dataclass

from kubetrail.emit.generator.ids import new_uuid
from kubetrail.emit.generator.workloads import Inventory, Node, Obj
from kubetrail.model.event import UserInfo

KUBE_VERSION = "v1.30.4"
KUBE_COMMIT = "a51b3b7"
KUBECTL = "kubectl/v1.30.2 ({platform}) kubernetes/3968350"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller: user info, user agent, source address and why RBAC lets it in."""

    user: UserInfo
    user_agent: str
    source_ips: list[str]
    reason: str = ""

    @property
    def name(self) -> str:
        """The username."""
        return self.user.username

    def with_agent(self, user_agent: str) -> Identity:
        """The same caller using another client (e.g. a controller's leader-election client)."""
        return Identity(self.user, user_agent, self.source_ips, self.reason)


def component_agent(component: str, suffix: str = "") -> str:
    """The user agent client-go builds for a Kubernetes binary: `NAME/VERSION (OS/ARCH) kubernetes/COMMIT[/SUFFIX]`."""
    agent = f"{component}/{KUBE_VERSION} (linux/amd64) kubernetes/{KUBE_COMMIT}"
    return f"{agent}/{suffix}" if suffix else agent


def rbac_reason(
    binding_kind: str, binding: str, role: str, subject_kind: str, subject: str, role_kind: str = "ClusterRole"
) -> str:
    """The RBAC authorizer's `authorization.k8s.io/reason` for an allowed request.

    RBAC names a RoleBinding and a ServiceAccount subject as `NAME/NAMESPACE`.
    """
    return f'RBAC: allowed by {binding_kind} "{binding}" of {role_kind} "{role}" to {subject_kind} "{subject}"'


def service_account(
    namespace: str,
    name: str,
    user_agent: str,
    ip: str,
    reason: str,
    *,
    rng: random.Random,
    pod: Obj | None = None,
    node: Node | None = None,
) -> Identity:
    """A service account; from inside a pod its bound token names the pod and its node in `user.extra`."""
    extra: dict[str, list[str]] = {}
    if pod is not None and node is not None:
        extra = {
            "authentication.kubernetes.io/credential-id": [f"JTI={new_uuid(rng)}"],
            "authentication.kubernetes.io/node-name": [node.name],
            "authentication.kubernetes.io/node-uid": [node.uid],
            "authentication.kubernetes.io/pod-name": [pod.name],
            "authentication.kubernetes.io/pod-uid": [pod.uid],
        }
    user = UserInfo(
        username=f"system:serviceaccount:{namespace}:{name}",
        uid=new_uuid(rng),
        groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED],
        extra=extra,
    )
    return Identity(user, user_agent, [ip], reason)


@dataclass(frozen=True)
class Cast:
    """Every regular caller of the cluster, plus the outsiders the attack scenarios use."""

    nodes: list[Node]
    kubelets: list[Identity]
    controller_manager: Identity
    controllers: dict[str, Identity]
    scheduler: Identity
    kube_proxies: list[Identity]
    coredns: Identity
    prometheus: Identity
    ci_deployer: Identity
    humans: list[Identity]
    admin: Identity
    anonymous_probe: Identity
    anonymous_outside: Identity
    intruder: Identity
    apiserver: Identity


_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "endpoint-controller",
    "node-controller",
    "job-controller",
    "namespace-controller",
    "generic-garbage-collector",
)


def build_cast(inventory: Inventory, rng: random.Random) -> Cast:
    """The callers of the cluster whose objects `inventory` holds (its first node runs the control plane)."""
    nodes = inventory.nodes
    control = nodes[0]
    kubelets = [
        Identity(
            UserInfo(username=f"system:node:{node.name}", groups=["system:nodes", AUTHENTICATED]),
            component_agent("kubelet"),
            [node.ip],
        )
        for node in nodes
    ]
    controller_manager = Identity(
        UserInfo(username="system:kube-controller-manager", groups=[AUTHENTICATED]),
        component_agent("kube-controller-manager", "leader-election"),
        [control.ip],
        rbac_reason(
            "ClusterRoleBinding",
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "User",
            "system:kube-controller-manager",
        ),
    )
    controllers = {
        name: service_account(
            "kube-system",
            name,
            component_agent("kube-controller-manager", f"system:serviceaccount:kube-system:{name}"),
            control.ip,
            rbac_reason(
                "ClusterRoleBinding",
                f"system:controller:{name}",
                f"system:controller:{name}",
                "ServiceAccount",
                f"{name}/kube-system",
            ),
            rng=rng,
        )
        for name in _CONTROLLERS
    }
    scheduler = Identity(
        UserInfo(username="system:kube-scheduler", groups=[AUTHENTICATED]),
        component_agent("kube-scheduler", "scheduler"),
        [control.ip],
        rbac_reason(
            "ClusterRoleBinding", "system:kube-scheduler", "system:kube-scheduler", "User", "system:kube-scheduler"
        ),
    )
    kube_proxies = [
        service_account(
            "kube-system",
            "kube-proxy",
            component_agent("kube-proxy"),
            node.ip,
            rbac_reason(
                "ClusterRoleBinding",
                "kubeadm:node-proxier",
                "system:node-proxier",
                "ServiceAccount",
                "kube-proxy/kube-system",
            ),
            rng=rng,
            pod=pod,
            node=node,
        )
        for node, pod in zip(nodes, inventory.proxy_pods, strict=True)
    ]
    coredns_pod = next(app for app in inventory.apps if app.name == "coredns").pods[0]
    coredns = service_account(
        "kube-system",
        "coredns",
        "coredns/v1.11.1 (linux/amd64) kubernetes/ae2bbc2",
        coredns_pod.spec["ip"],
        rbac_reason("ClusterRoleBinding", "system:coredns", "system:coredns", "ServiceAccount", "coredns/kube-system"),
        rng=rng,
        pod=coredns_pod,
        node=inventory.node(coredns_pod.node),
    )
    prometheus = service_account(
        "monitoring",
        "prometheus",
        "Prometheus/2.53.0",
        inventory.prometheus_pod.spec["ip"],
        rbac_reason("ClusterRoleBinding", "prometheus", "prometheus", "ServiceAccount", "prometheus/monitoring"),
        rng=rng,
        pod=inventory.prometheus_pod,
        node=inventory.node(inventory.prometheus_pod.node),
    )
    ci_deployer = service_account(
        "ci",
        "deployer",
        KUBECTL.format(platform="linux/amd64"),
        "10.0.5.20",
        rbac_reason("ClusterRoleBinding", "ci-deployer", "edit", "ServiceAccount", "deployer/ci"),
        rng=rng,
    )
    humans = [
        Identity(
            UserInfo(username=email, uid="", groups=[team, AUTHENTICATED]),
            KUBECTL.format(platform=platform),
            [ip],
            rbac_reason(binding_kind, binding, role, "Group", team),
        )
        for email, team, platform, ip, binding_kind, binding, role in (
            (
                "alice@example.com",
                "platform-team",
                "darwin/arm64",
                "192.168.10.21",
                "ClusterRoleBinding",
                "platform-admins",
                "admin",
            ),
            ("bob@example.com", "developers", "linux/amd64", "192.168.10.34", "RoleBinding", "developers/shop", "edit"),
            (
                "carol@example.com",
                "developers",
                "windows/amd64",
                "192.168.10.52",
                "RoleBinding",
                "developers/payments",
                "edit",
            ),
        )
    ]
    admin = Identity(
        UserInfo(username="kubernetes-admin", groups=["kubeadm:cluster-admins", AUTHENTICATED]),
        KUBECTL.format(platform="linux/amd64"),
        [control.ip],
        rbac_reason("ClusterRoleBinding", "kubeadm:cluster-admins", "cluster-admin", "Group", "kubeadm:cluster-admins"),
    )
    anonymous_probe = Identity(
        UserInfo(username="system:anonymous", groups=["system:unauthenticated"]),
        "kube-probe/1.30",
        [control.ip],
        rbac_reason(
            "ClusterRoleBinding",
            "system:public-info-viewer",
            "system:public-info-viewer",
            "Group",
            "system:unauthenticated",
        ),
    )
    anonymous_outside = Identity(
        UserInfo(username="system:anonymous", groups=["system:unauthenticated"]),
        "python-requests/2.31.0",
        ["203.0.113.45"],
        anonymous_probe.reason,
    )
    intruder = Identity(
        UserInfo(username="dev-intern@example.com", groups=["interns", AUTHENTICATED]),
        KUBECTL.format(platform="linux/amd64"),
        ["198.51.100.77"],
        rbac_reason("RoleBinding", "interns-view/shop", "view", "Group", "interns"),
    )
    apiserver = Identity(
        UserInfo(username="system:apiserver", uid=new_uuid(rng), groups=["system:masters"]),
        component_agent("kube-apiserver"),
        ["::1"],
        "",
    )
    return Cast(
        nodes=nodes,
        kubelets=kubelets,
        controller_manager=controller_manager,
        controllers=controllers,
        scheduler=scheduler,
        kube_proxies=kube_proxies,
        coredns=coredns,
        prometheus=prometheus,
        ci_deployer=ci_deployer,
        humans=humans,
        admin=admin,
        anonymous_probe=anonymous_probe,
        anonymous_outside=anonymous_outside,
        intruder=intruder,
        apiserver=apiserver,
    )
