"""The objects of a small cluster: namespaces, apps with their pods, secrets, config maps, services, leases.

The inventory is built once from the stream's random source; requests then read and update it,
so names, uids and resourceVersions stay consistent across the whole stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kubetrail.emit.generator.ids import name_suffix, new_uuid, template_hash
from kubetrail.emit.generator.resources import KINDS, Kind
from kubetrail.model.event import ObjectReference

NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "monitoring", "ci", "shop", "payments")
APP_NAMESPACES = ("shop", "payments", "monitoring")

# (namespace, app, image, replicas, port)
_APPS = (
    ("shop", "frontend", "nginx:1.27.1", 2, 80),
    ("shop", "cart", "ghcr.io/example/cart:2.4.1", 2, 8080),
    ("shop", "catalog", "ghcr.io/example/catalog:1.9.0", 2, 8080),
    ("payments", "api", "ghcr.io/example/payments-api:3.2.0", 2, 8443),
    ("payments", "worker", "ghcr.io/example/payments-worker:3.2.0", 1, 9090),
    ("monitoring", "grafana", "grafana/grafana:11.1.0", 1, 3000),
    ("kube-system", "coredns", "registry.k8s.io/coredns/coredns:v1.11.1", 2, 53),
    ("kube-system", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.1", 1, 10250),
)
_STATIC_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Node:
    """A cluster node: its name, address, uid and whether it runs the control plane."""

    name: str
    ip: str
    control_plane: bool
    uid: str


def build_nodes(count: int, rng: random.Random) -> list[Node]:
    """`count` nodes: `control-plane-1`, then `worker-1`, `worker-2`, … on 10.0.0.0/16."""
    return [
        Node(
            name="control-plane-1" if index == 0 else f"worker-{index}",
            ip=f"10.0.{index // 240}.{10 + index % 240}",
            control_plane=index == 0,
            uid=new_uuid(rng),
        )
        for index in range(count)
    ]


@dataclass
class Obj:
    """One stored object: identity, owner, placement and a resourceVersion bumped on every write."""

    kind: Kind
    namespace: str
    name: str
    uid: str
    created_us: int
    resource_version: int
    labels: dict[str, str] = field(default_factory=dict)
    app: str = ""
    node: str = ""
    owner: Obj | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    document: dict[str, Any] | None = None
    cached: tuple[int, bytes] | None = None
    targets: dict[str, tuple[str, ObjectReference]] = field(default_factory=dict)

    @property
    def rv(self) -> str:
        """The resourceVersion as the API returns it (a string)."""
        return str(self.resource_version)

    def reshaped(self) -> None:
        """Forget the cached body after a change beyond the resourceVersion (spec, generation)."""
        self.document = None
        self.cached = None


@dataclass
class App:
    """A workload: its deployment, the current replica set and pods, and the config it mounts."""

    namespace: str
    name: str
    image: str
    port: int
    deployment: Obj
    replicaset: Obj
    pods: list[Obj]
    service: Obj
    secrets: list[Obj]
    configmaps: list[Obj]
    service_account: Obj


class Inventory:
    """Every object the generated traffic refers to, with a cluster-wide resourceVersion counter."""

    def __init__(self, nodes: list[Node], rng: random.Random) -> None:
        self.rng = rng
        self.nodes = nodes
        self._version = 480_000 + rng.randrange(20_000)
        self.by_namespace: dict[str, dict[str, list[Obj]]] = {ns: {} for ns in NAMESPACES}
        self.namespaces = [self._add("namespaces", "", ns, age_days=90) for ns in NAMESPACES]
        self.node_objects = [self._add("nodes", "", node.name, age_days=60, node=node.name) for node in nodes]
        self.root_ca = {ns: self._add("configmaps", ns, "kube-root-ca.crt", age_days=90) for ns in NAMESPACES}
        self.default_accounts = {ns: self._add("serviceaccounts", ns, "default", age_days=90) for ns in NAMESPACES}
        workers = [node for node in nodes if not node.control_plane] or nodes
        self.apps = [self._app(ns, name, image, replicas, port, workers) for ns, name, image, replicas, port in _APPS]
        self.node_leases = [self._add("leases", "kube-node-lease", node.name, age_days=60) for node in nodes]
        control = nodes[0].name
        self.leader_leases = {
            name: self._add("leases", "kube-system", name, age_days=60)
            for name in ("kube-controller-manager", "kube-scheduler")
        }
        self.apiserver_lease = self._add("leases", "kube-system", f"apiserver-{name_suffix(rng, 26)}", age_days=20)
        self.static_pods = [
            self._add("pods", "kube-system", f"{name}-{control}", age_days=60, node=control, app=name)
            for name in _STATIC_PODS
        ]
        self.proxy_pods = [
            self._add(
                "pods", "kube-system", f"kube-proxy-{name_suffix(rng)}", age_days=60, node=node.name, app="kube-proxy"
            )
            for node in nodes
        ]
        self.prometheus_pod = self._add(
            "pods", "monitoring", "prometheus-0", age_days=20, node=workers[-1].name, app="prometheus"
        )
        for pod in [*self.static_pods, *self.proxy_pods]:
            pod.spec["ip"] = self.node(pod.node).ip
        self.prometheus_pod.spec["ip"] = f"10.244.{1 + rng.randrange(8)}.{2 + rng.randrange(250)}"
        self.cluster_secrets = [
            self._add("secrets", "kube-system", f"bootstrap-token-{name_suffix(rng, 6)}", age_days=30),
            self._add("secrets", "ci", "registry-credentials", age_days=45),
            self._add("secrets", "monitoring", "grafana-admin", age_days=45),
            self._add("secrets", "shop", "sh.helm.release.v1.shop.v7", age_days=3),
        ]
        self.services = [self._add("services", "default", "kubernetes", age_days=90)]
        self.services.append(self._add("services", "kube-system", "kube-dns", age_days=90))
        self.services.extend(app.service for app in self.apps)

    def node(self, name: str) -> Node:
        """The node called `name`."""
        return next(node for node in self.nodes if node.name == name)

    def next_version(self) -> int:
        """A fresh resourceVersion, as etcd's revision grows with every write."""
        self._version += 1 + int(self.rng.random() * 3)
        return self._version

    def touch(self, obj: Obj) -> Obj:
        """Record a write to `obj` (update, patch, status change): it gets a new resourceVersion."""
        obj.resource_version = self.next_version()
        return obj

    def objects(self, namespace: str, resource: str) -> list[Obj]:
        """The stored objects of one resource type in one namespace."""
        return self.by_namespace.get(namespace, {}).get(resource, [])

    def all_of(self, resource: str) -> list[Obj]:
        """Every stored object of one resource type, across namespaces."""
        return [obj for kinds in self.by_namespace.values() for obj in kinds.get(resource, [])]

    def pods(self) -> list[Obj]:
        """Every pod of the cluster (app pods, static pods, kube-proxy)."""
        return self.all_of("pods")

    def pods_on(self, node: str) -> list[Obj]:
        """The pods a node's kubelet runs."""
        return [pod for pod in self.all_of("pods") if pod.node == node]

    def _add(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        age_days: float,
        node: str = "",
        app: str = "",
        owner: Obj | None = None,
        labels: dict[str, str] | None = None,
        keep: bool = True,
    ) -> Obj:
        kind = KINDS[resource]
        created = -int(age_days * 86_400_000_000 * (0.5 + self.rng.random() / 2))
        obj = Obj(
            kind=kind,
            namespace=namespace,
            name=name,
            uid=new_uuid(self.rng),
            created_us=created,
            resource_version=self.next_version() - 400_000 + self.rng.randrange(300_000),
            labels=labels or ({"app": app} if app else {}),
            app=app,
            node=node,
            owner=owner,
        )
        if keep:
            self.by_namespace.setdefault(namespace, {}).setdefault(resource, []).append(obj)
        return obj

    def add_object(
        self,
        resource: str,
        namespace: str,
        name: str,
        *,
        at_us: int = 0,
        app: str = "",
        node: str = "",
        keep: bool = True,
    ) -> Obj:
        """A new object created at `at_us`; short-lived ones (`keep=False`, e.g. Events) are not stored."""
        obj = self._add(resource, namespace, name, age_days=0, app=app, node=node, keep=keep)
        obj.created_us = at_us
        obj.resource_version = self.next_version()
        return obj

    def _app(self, namespace: str, name: str, image: str, replicas: int, port: int, workers: list[Node]) -> App:
        rng = self.rng
        age = 5 + rng.random() * 40
        deployment = self._add("deployments", namespace, name, age_days=age, app=name)
        deployment.spec = {"image": image, "replicas": replicas, "port": port, "generation": 1 + rng.randrange(30)}
        pod_hash = template_hash(rng)
        replicaset = self._add(
            "replicasets",
            namespace,
            f"{name}-{pod_hash}",
            age_days=age / 2,
            app=name,
            owner=deployment,
            labels={"app": name, "pod-template-hash": pod_hash},
        )
        pods = [
            self._add(
                "pods",
                namespace,
                f"{replicaset.name}-{name_suffix(rng)}",
                age_days=age / 3,
                app=name,
                node=rng.choice(workers).name,
                owner=replicaset,
                labels={"app": name, "pod-template-hash": pod_hash},
            )
            for _ in range(replicas)
        ]
        for pod in pods:
            pod.spec = {"image": image, "port": port, "ip": f"10.244.{1 + rng.randrange(8)}.{2 + rng.randrange(250)}"}
        service = self._add("services", namespace, name, age_days=age, app=name)
        service.spec = {"port": port, "clusterIP": f"10.96.{rng.randrange(256)}.{1 + rng.randrange(254)}"}
        secrets = [
            self._add("secrets", namespace, f"{name}-db-credentials", age_days=age, app=name),
            self._add("secrets", namespace, f"{name}-tls", age_days=age, app=name),
        ]
        configmaps = [self._add("configmaps", namespace, f"{name}-config", age_days=age, app=name)]
        account = self._add("serviceaccounts", namespace, name, age_days=age, app=name)
        return App(namespace, name, image, port, deployment, replicaset, pods, service, secrets, configmaps, account)
