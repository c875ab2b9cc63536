"""The everyday traffic of a small cluster, as weighted sources of request sequences.

Each source returns the calls of one interaction (a leader-election renewal is a get then an
update; `kubectl describe` is a get then a list of events). Weights are relative request rates;
node-bound sources scale with the number of nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubetrail.emit.generator import bodies
from kubetrail.emit.generator.calls import Api, Call
from kubetrail.emit.generator.identities import Identity
from kubetrail.emit.generator.resources import CORE_EVENTS, EVENTS_V1, KINDS
from kubetrail.emit.generator.workloads import APP_NAMESPACES, NAMESPACES, Obj
from kubetrail.model.event import UserInfo

Source = Callable[[Api], list[Call]]


@dataclass(frozen=True)
class WeightedSource:
    """A source, how often it runs (relative), how many requests a run makes on average, and
    whether its frequency scales with the number of nodes."""

    name: str
    source: Source
    weight: float
    per_node: bool = False
    calls: float = 1.0


def node_lease(api: Api) -> list[Call]:
    """A kubelet renews its node's lease (every 10 s) with a PUT."""
    inv = api.world.inventory
    index = api.rng.randrange(len(inv.node_leases))
    lease = inv.touch(inv.node_leases[index])
    kubelet = api.world.cast.kubelets[index]
    node_uid = inv.node_objects[index].uid
    body = bodies.lease(lease, api.clock, lease.name, api.now, 40, manager="kubelet", node_uid=node_uid)
    return [api.update(kubelet, lease, body)]


def leader_election(api: Api) -> list[Call]:
    """The controller manager or the scheduler renews its leader lease: get, then update."""
    cast = api.world.cast
    name = api.rng.choice(("kube-controller-manager", "kube-scheduler"))
    actor = cast.controller_manager if name == "kube-controller-manager" else cast.scheduler
    actor = actor.with_agent(actor.user_agent.rsplit("/", 1)[0] + "/leader-election")
    lease = api.world.inventory.leader_leases[name]
    holder = f"{cast.nodes[0].name}_{lease.uid[:8]}-{lease.uid[9:13]}"
    read = api.get(actor, lease)
    read.response_body = bodies.lease(lease, api.clock, holder, api.now - 2_000_000, 15, manager=name)
    api.world.inventory.touch(lease)
    write = api.update(actor, lease, bodies.lease(lease, api.clock, holder, api.now, 15, manager=name))
    write.gap_us = 500
    return [read, write]


def health_probe(api: Api) -> list[Call]:
    """Liveness/readiness probes and load-balancer checks: anonymous, non-resource."""
    cast = api.world.cast
    path = api.rng.choice(("/livez", "/readyz", "/healthz", "/readyz", "/livez"))
    return [api.path(cast.anonymous_probe, path)]


def metrics_scrape(api: Api) -> list[Call]:
    """Prometheus scrapes the apiserver's `/metrics`."""
    return [api.path(api.world.cast.prometheus, "/metrics")]


def kubelet_mounts(api: Api) -> list[Call]:
    """A kubelet watches (or re-reads) a Secret or ConfigMap one of its pods mounts."""
    rng = api.rng
    app = rng.choice(api.world.inventory.apps)
    pod = rng.choice(app.pods)
    kubelet = _kubelet_of(api, pod.node)
    obj = rng.choice([*app.secrets, *app.configmaps, api.world.inventory.root_ca[app.namespace]])
    if rng.random() < 0.8:
        return [api.watch(kubelet, obj.kind, obj.namespace, name=obj.name)]
    return [api.get(kubelet, obj)]


def kubelet_pods(api: Api) -> list[Call]:
    """A kubelet reads one of its pods and patches its status (a probe flipped, a restart)."""
    rng = api.rng
    app = rng.choice(api.world.inventory.apps)
    pod = rng.choice(app.pods)
    kubelet = _kubelet_of(api, pod.node)
    read = api.get(kubelet, pod)
    if rng.random() < 0.5:
        return [read]
    patch = bodies.encode(
        {
            "metadata": {"uid": pod.uid},
            "status": {"$setElementOrder/conditions": [{"type": "Ready"}], "conditions": [{"type": "Ready"}]},
        }
    )
    write = api.patch(kubelet, pod, patch, subresource="status")
    write.gap_us = 2_000
    return [read, write]


def kubelet_node_status(api: Api) -> list[Call]:
    """A kubelet refreshes its node's condition heartbeats with a strategic-merge patch."""
    inv = api.world.inventory
    index = api.rng.randrange(len(inv.node_objects))
    node = inv.touch(inv.node_objects[index])
    kubelet = api.world.cast.kubelets[index]
    patch = bodies.node_status_patch(api.clock, api.now)
    response = bodies.node(node, api.clock, api.now, api.world.cast.nodes[index].ip)
    return [api.patch(kubelet, node, patch, subresource="status", response=response)]


def component_watch(api: Api) -> list[Call]:
    """An informer of a system component re-establishes its watch (client-go does so every 5-10 minutes)."""
    cast = api.world.cast
    rng = api.rng
    choice = rng.randrange(6)
    if choice == 0:
        proxy = rng.choice(cast.kube_proxies)
        kind = rng.choice((KINDS["services"], KINDS["endpointslices"]))
        return [api.watch(proxy, kind)]
    if choice == 1:
        return [api.watch(cast.coredns, rng.choice((KINDS["services"], KINDS["endpointslices"], KINDS["namespaces"])))]
    if choice == 2:
        kind = KINDS[rng.choice(("pods", "nodes", "services", "persistentvolumes", "replicasets", "statefulsets"))]
        return [api.watch(cast.scheduler.with_agent(cast.scheduler.user_agent), kind)]
    if choice == 3:
        kubelet = rng.choice(cast.kubelets)
        return [api.watch(kubelet, KINDS["services"] if rng.random() < 0.5 else KINDS["nodes"])]
    if choice == 4:
        kind = KINDS[rng.choice(("secrets", "configmaps", "namespaces", "clusterroles", "rolebindings", "leases"))]
        return [api.watch(cast.apiserver, kind)]
    controller = rng.choice(list(cast.controllers.values()))
    kind = KINDS[rng.choice(("pods", "deployments", "replicasets", "endpointslices", "services", "nodes", "jobs"))]
    return [api.watch(controller, kind)]


def controllers(api: Api) -> list[Call]:
    """Controllers reconcile: endpoint slices, replica set and deployment status updates, reads."""
    cast = api.world.cast
    inv = api.world.inventory
    rng = api.rng
    app = rng.choice(inv.apps)
    choice = rng.randrange(4)
    if choice == 0:
        slice_obj = _endpointslice(api, app.namespace, app.name)
        actor = cast.controllers["endpointslice-controller"]
        return [api.update(actor, inv.touch(slice_obj), bodies.object_body(slice_obj, api.clock))]
    if choice == 1:
        actor = cast.controllers["replicaset-controller"]
        rs = inv.touch(app.replicaset)
        return [api.update(actor, rs, bodies.object_body(rs, api.clock), subresource="status")]
    if choice == 2:
        actor = cast.controllers["deployment-controller"]
        deployment = inv.touch(app.deployment)
        body = bodies.deployment(deployment, api.clock)
        call = api.update(actor, deployment, body, subresource="status")
        if rng.random() < 0.15:
            return [api.conflict(call)]
        return [call]
    actor = cast.controllers["node-controller"]
    index = rng.randrange(len(inv.node_objects))
    node = inv.node_objects[index]
    read = api.get(actor, node)
    read.response_body = bodies.node(node, api.clock, api.now, cast.nodes[index].ip)
    return [read]


def scheduler_binding(api: Api) -> list[Call]:
    """The scheduler binds a pod to a node (`pods/binding` create)."""
    rng = api.rng
    app = rng.choice(api.world.inventory.apps)
    pod = rng.choice(app.pods)
    binding = bodies.encode(
        {
            "kind": "Binding",
            "apiVersion": "v1",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"kind": "Node", "name": pod.node},
        }
    )
    call = api.get(api.world.cast.scheduler, pod, subresource="binding")
    call.verb = "create"
    call.code = 201
    call.request_body = binding
    call.response_body = bodies.status(201)
    return [call]


def event_records(api: Api) -> list[Call]:
    """Kubelets and controllers post Events (core/v1 or events.k8s.io/v1)."""
    rng = api.rng
    cast = api.world.cast
    app = rng.choice(api.world.inventory.apps)
    pod = rng.choice(app.pods)
    reason, message, actor, source = rng.choice(
        (
            (
                "Pulled",
                f'Container image "{app.image}" already present on machine',
                _kubelet_of(api, pod.node),
                "kubelet",
            ),
            ("Started", f"Started container {app.name}", _kubelet_of(api, pod.node), "kubelet"),
            (
                "Unhealthy",
                "Readiness probe failed: HTTP probe failed with statuscode: 503",
                _kubelet_of(api, pod.node),
                "kubelet",
            ),
            (
                "ScalingReplicaSet",
                f"Scaled up replica set {app.replicaset.name} to 2",
                cast.controllers["deployment-controller"],
                "deployment-controller",
            ),
        )
    )
    name = f"{pod.name}.{rng.getrandbits(64):x}"[:63]
    inventory = api.world.inventory
    kind = CORE_EVENTS if rng.random() < 0.7 else EVENTS_V1
    record = Obj(kind, pod.namespace, name, api.new_id(), api.now, inventory.next_version())
    body = bodies.event_object(api.clock, api.now, pod, reason, message, source, name)
    call = api.create(actor, record, body, response=body)
    return [call]


def apiserver_self(api: Api) -> list[Call]:
    """The apiserver's own loopback client: renewing its identity lease, and periodic reads."""
    cast = api.world.cast
    inv = api.world.inventory
    if api.rng.random() < 0.7:
        lease = inv.touch(inv.apiserver_lease)
        body = bodies.lease(lease, api.clock, lease.name, api.now, 3600, manager="kube-apiserver")
        return [api.update(cast.apiserver, lease, body)]
    namespace = api.rng.choice(NAMESPACES)
    return [api.get(cast.apiserver, inv.root_ca[namespace])]


def discovery(api: Api) -> list[Call]:
    """Clients refresh API discovery: `/api`, `/apis`, `/version`, `/openapi/v2`."""
    rng = api.rng
    actor = rng.choice([*api.world.cast.humans, api.world.cast.ci_deployer])
    paths = ["/api?timeout=32s", "/apis?timeout=32s"] if rng.random() < 0.7 else ["/version?timeout=32s"]
    return [api.path(actor, path) for path in paths]


def human_session(api: Api) -> list[Call]:
    """Someone at a terminal: kubectl get, describe, logs, edit; now and then a 404 or a 403 (on nodes)."""
    rng = api.rng
    cast = api.world.cast
    inv = api.world.inventory
    human = rng.choice(cast.humans)
    app = rng.choice([app for app in inv.apps if app.namespace in APP_NAMESPACES])
    pod = rng.choice(app.pods)
    choice = rng.randrange(8)
    calls: list[Call]
    if choice == 0:
        calls = [api.list(human, KINDS["pods"], app.namespace)]
    elif choice == 1:
        events = api.list(
            human,
            CORE_EVENTS,
            app.namespace,
            query=f"fieldSelector=involvedObject.name%3D{pod.name}%2CinvolvedObject.namespace%3D{app.namespace}"
            f"%2CinvolvedObject.uid%3D{pod.uid}&limit=500",
        )
        calls = [api.get(human, pod), events]
    elif choice == 2:
        calls = [api.logs(human, pod, follow=rng.random() < 0.3)]
    elif choice == 3:
        read = api.get(human, app.deployment)
        patch = bodies.encode({"spec": {"replicas": rng.choice((2, 3))}})
        write = api.patch(human, app.deployment, patch, query="fieldManager=kubectl-edit&fieldValidation=Strict")
        write.gap_us = 20_000_000
        calls = [read, write]
    elif choice == 4:
        gone = Obj(pod.kind, pod.namespace, pod.name[:-5] + "x7k2p", "", 0, 0)  # a pod since replaced
        calls = [api.not_found(api.get(human, gone, subresource="log", query="container=" + app.name))]
    elif choice == 5:
        # `kubectl get nodes` by someone whose role stops at namespaces: refused, harmless
        calls = [api.forbid(api.list(human, KINDS["nodes"]))]
    elif choice == 6:
        # `kubectl get pods --as=... --as-group=...`: authorized as the impersonated user
        admin, developer = cast.humans[0], cast.humans[1]
        call = api.list(admin, KINDS["pods"], "shop")
        call.impersonated = UserInfo(username=developer.name, groups=[developer.user.groups[0]])
        call.reason = developer.reason
        calls = [call]
    else:
        calls = [
            api.list(human, KINDS["deployments"], app.namespace),
            api.list(human, KINDS["services"], app.namespace),
        ]
    for call in calls[1:]:
        if not call.gap_us:
            call.gap_us = 150_000
    return calls


def ci_deploy(api: Api) -> list[Call]:
    """The CI pipeline applies a release: read the deployment, server-side apply, update a config map."""
    rng = api.rng
    inv = api.world.inventory
    deployer = api.world.cast.ci_deployer
    app = rng.choice([app for app in inv.apps if app.namespace in ("shop", "payments")])
    deployment = app.deployment
    deployment.spec["generation"] = deployment.spec.get("generation", 1) + 1
    deployment.reshaped()
    apply = bodies.encode(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": deployment.name, "namespace": deployment.namespace},
            "spec": bodies.deployment_body(deployment, api.clock)["spec"],
        }
    )
    calls = [
        api.get(deployer, deployment),
        api.patch(deployer, deployment, apply, query="fieldManager=kubectl&force=true"),
        api.patch(
            deployer,
            app.configmaps[0],
            bodies.encode({"data": {"RELEASE": f"r{deployment.spec['generation']}"}}),
            query="fieldManager=kubectl&force=true",
        ),
    ]
    for call in calls[1:]:
        call.gap_us = 40_000
    if rng.random() < 0.2:
        calls.append(
            api.conflict(
                api.create(deployer, app.configmaps[0], bodies.configmap(app.configmaps[0], api.clock)), exists=True
            )
        )
    return calls


def token_review(api: Api) -> list[Call]:
    """A kubelet or metrics-server checks a bearer token (`tokenreviews` create)."""
    rng = api.rng
    actor = rng.choice(api.world.cast.kubelets)
    token = bodies.encode(
        {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {"token": "eyJhbGciOiJSUzI1NiJ9." + api.new_id().replace("-", "")},
            "status": {"user": {}},
        }
    )
    review = api.world.inventory.add_object("tokenreviews", "", "", at_us=api.now, keep=False)
    call = api.create(actor, review, token, response=token)
    return [call]


PROFILE: tuple[WeightedSource, ...] = (
    WeightedSource("node-lease", node_lease, 1.0, per_node=True),
    WeightedSource("leader-election", leader_election, 1.0, calls=2.0),
    WeightedSource("health", health_probe, 1.2),
    WeightedSource("metrics", metrics_scrape, 0.1),
    WeightedSource("kubelet-mounts", kubelet_mounts, 0.25, per_node=True),
    WeightedSource("kubelet-pods", kubelet_pods, 0.25, per_node=True, calls=1.5),
    WeightedSource("kubelet-node-status", kubelet_node_status, 0.05, per_node=True),
    WeightedSource("component-watch", component_watch, 0.5),
    WeightedSource("controllers", controllers, 1.0),
    WeightedSource("scheduler", scheduler_binding, 0.05),
    WeightedSource("events", event_records, 0.4),
    WeightedSource("apiserver", apiserver_self, 0.5),
    WeightedSource("discovery", discovery, 0.15, calls=1.7),
    WeightedSource("humans", human_session, 0.25, calls=1.4),
    WeightedSource("ci", ci_deploy, 0.06, calls=3.2),
    WeightedSource("tokenreviews", token_review, 0.1),
)


def _kubelet_of(api: Api, node_name: str) -> Identity:
    for identity, node in zip(api.world.cast.kubelets, api.world.cast.nodes, strict=True):
        if node.name == node_name:
            return identity
    return api.world.cast.kubelets[0]


def _endpointslice(api: Api, namespace: str, app: str) -> Obj:
    inv = api.world.inventory
    for obj in inv.objects(namespace, "endpointslices"):
        if obj.app == app:
            return obj
    return inv.add_object("endpointslices", namespace, f"{app}-{api.rng.getrandbits(20):05x}", at_us=api.now, app=app)
