"""Attack scenarios: short request sequences with the footprint detection rules look for.

Each scenario is a function of the builder and the repeat number (so repeats vary: another pod,
another namespace, a denied attempt) returning its calls; `gap_us` spaces them out in time.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kubetrail.emit.generator import bodies
from kubetrail.emit.generator.calls import Api, Call, command_query
from kubetrail.emit.generator.identities import KUBECTL, Identity, rbac_reason, service_account
from kubetrail.emit.generator.resources import KINDS
from kubetrail.model.event import UserInfo

Scenario = Callable[[Api, int], list[Call]]
PSA_ENFORCE = "pod-security.kubernetes.io/enforce-policy"


def _spaced(calls: list[Call], low_ms: float, high_ms: float, rng: random.Random) -> list[Call]:
    for call in calls[1:]:
        if not call.gap_us:
            call.gap_us = int((low_ms + (high_ms - low_ms) * rng.random()) * 1000)
    return calls


def exec_into_pod(api: Api, repeat: int) -> list[Call]:
    """`kubectl exec` into an app pod or a control-plane pod: get the pod, then `pods/exec` with a command."""
    world = api.world
    cast = world.cast
    inv = world.inventory
    if repeat % 2 == 0:
        actor = cast.humans[1]
        app = next(app for app in inv.apps if app.namespace == "shop")
        pod = app.pods[0]
        command = ["sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token; env"]
        tty = False
    else:
        actor = cast.intruder.with_agent(cast.intruder.user_agent)
        actor = Identity(actor.user, actor.user_agent, actor.source_ips, cast.admin.reason)
        pod = inv.static_pods[0]  # etcd in kube-system
        command = ["etcdctl", "get", "/registry/secrets", "--prefix", "--keys-only"]
        tty = repeat % 4 == 1
        if tty:
            command = ["/bin/sh"]
    container = pod.app or "app"
    read = api.get(actor, pod)
    session = api.connect(
        actor,
        pod,
        "exec",
        command_query(command, container, tty=tty),
        bodies.exec_options(command, container, tty),
        session_s=5 + api.rng.random() * (240 if tty else 10),
    )
    session.gap_us = 80_000
    return [read, session]


def privileged_pod(api: Api, repeat: int) -> list[Call]:
    """A pod with a privileged container, the host's `/` mounted, hostNetwork and hostPID.

    In a namespace enforcing the baseline Pod Security level, admission refuses it (403).
    """
    world = api.world
    inv = world.inventory
    actor = world.cast.intruder if repeat % 2 else world.cast.humans[2]
    actor = Identity(actor.user, actor.user_agent, actor.source_ips, world.cast.admin.reason)
    namespace = ("default", "payments", "kube-system")[repeat % 3]
    name = ("node-debugger", "host-inspect", "sys-agent")[repeat % 3] + f"-{api.rng.randrange(1000):03d}"
    pod = inv.add_object("pods", namespace, name, at_us=api.now, app=name, node=world.cast.nodes[-1].name)
    pod.spec = {"image": "alpine:3.20"}
    body = bodies.pod_body(pod, api.clock)
    spec = body["spec"]
    spec["hostNetwork"] = True
    spec["hostPID"] = True
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/", "type": ""}})
    container = spec["containers"][0]
    container["command"] = ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--", "bash"]
    container["securityContext"] = {"privileged": True}
    container["volumeMounts"].append({"name": "host", "mountPath": "/host"})
    pod.document = body  # later reads of this pod show what was created
    request = dict(body)
    request["metadata"] = {"name": name, "namespace": namespace}
    request.pop("status")
    call = api.create(
        actor,
        pod,
        bodies.encode(request),
        query="fieldManager=kubectl-create&fieldValidation=Strict",
        response=bodies.encode(body),
    )
    if namespace == "payments":
        message = (
            f'pods "{name}" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
            f'(hostNetwork=true, hostPID=true), privileged (container "{name}" must not set '
            f'securityContext.privileged=true), hostPath volumes (volume "host")'
        )
        call = api.fail(call, 403, message, {"name": name, "kind": "pods"})
        call.final_ref = call.ref
        call.annotations[PSA_ENFORCE] = "baseline:latest"
        inv.by_namespace[namespace]["pods"].remove(pod)
    else:
        call.annotations[PSA_ENFORCE] = "privileged:latest"
    return [call]


def secret_harvesting(api: Api, repeat: int) -> list[Call]:
    """A compromised workload identity lists Secrets across namespaces, then reads many in a burst."""
    world = api.world
    inv = world.inventory
    rng = api.rng
    cart = next(app for app in inv.apps if app.name == "cart")
    actor = service_account(
        "shop",
        "cart",
        "python-requests/2.31.0" if repeat % 2 else KUBECTL.format(platform="linux/amd64"),
        cart.pods[0].spec.get("ip", "10.244.1.9"),
        rbac_reason("ClusterRoleBinding", "cart-secret-reader", "secret-reader", "ServiceAccount", "cart/shop"),
        rng=rng,
        pod=cart.pods[0],
        node=inv.node(cart.pods[0].node),
    )
    secrets_kind = KINDS["secrets"]
    calls = [api.list(actor, secrets_kind)]
    for namespace in ("kube-system", "payments", "monitoring", "ci"):
        calls.append(api.list(actor, secrets_kind, namespace))
    targets = inv.all_of("secrets")
    rng.shuffle(targets)
    calls.extend(api.get(actor, secret) for secret in targets[:12])
    return _spaced(calls, 30, 250, rng)


def rbac_escalation(api: Api, repeat: int) -> list[Call]:
    """Bind oneself to cluster-admin with a ClusterRoleBinding and create a Role granting `*` on `*`."""
    world = api.world
    inv = world.inventory
    actor = world.cast.ci_deployer if repeat % 2 else world.cast.humans[1]
    target_user = actor.name
    binding_name = ("ops-break-glass", "ci-admin", "debug-access")[repeat % 3]
    binding = inv.add_object("clusterrolebindings", "", binding_name, at_us=api.now)
    subject = (
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
        if target_user.startswith("system:serviceaccount:")
        else {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": target_user}
    )
    binding_body = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": binding_name},
        "subjects": [subject],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    }
    created = dict(binding_body)
    created["metadata"] = bodies.metadata(binding, api.clock)
    namespace = ("shop", "payments", "default")[repeat % 3]
    role = inv.add_object("roles", namespace, "all-access", at_us=api.now)
    role_body = {
        "kind": "Role",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "all-access", "namespace": namespace},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    role_created = dict(role_body)
    role_created["metadata"] = bodies.metadata(role, api.clock)
    query = "fieldManager=kubectl-create&fieldValidation=Strict"
    calls = [
        api.create(actor, binding, bodies.encode(binding_body), query=query, response=bodies.encode(created)),
        api.create(actor, role, bodies.encode(role_body), query=query, response=bodies.encode(role_created)),
    ]
    if repeat == 0:
        denied = world.cast.intruder
        attempt = api.create(denied, binding, bodies.encode(binding_body), query=query)
        calls.insert(0, api.forbid(attempt))
    return _spaced(calls, 500, 4000, api.rng)


def anonymous_access(api: Api, repeat: int) -> list[Call]:
    """Unauthenticated probing from outside: public endpoints answer, resources are 403, bad tokens 401."""
    world = api.world
    anon = world.cast.anonymous_outside
    curl = Identity(anon.user, "curl/8.5.0", anon.source_ips, anon.reason)
    calls = [api.path(curl, "/version"), api.path(curl, "/healthz")]
    calls.append(api.forbid(api.path(curl, "/api")))
    calls.append(api.forbid(api.path(curl, "/apis")))
    for kind, namespace in (("secrets", "kube-system"), ("pods", ""), ("nodes", ""), ("configmaps", "kube-system")):
        calls.append(api.forbid(api.list(curl, KINDS[kind], namespace, query="")))
    for _ in range(3 + repeat % 3):
        calls.append(api.unauthenticated(api.list(curl, KINDS["pods"], "default", query="")))
    return _spaced(calls, 100, 900, api.rng)


def token_theft(api: Api, repeat: int) -> list[Call]:
    """A token is minted for a service account, then used from an unusual address and client."""
    world = api.world
    inv = world.inventory
    rng = api.rng
    minter = world.cast.humans[repeat % len(world.cast.humans)]
    minter = Identity(minter.user, minter.user_agent, minter.source_ips, world.cast.admin.reason)
    account = next(obj for obj in inv.all_of("serviceaccounts") if obj.namespace == "ci" and obj.name == "default")
    request, response = bodies.token_request(rng, api.clock, api.now, "https://kubernetes.default.svc", 172800)
    mint = api.get(minter, account, subresource="token")
    mint.verb = "create"
    mint.code = 201
    mint.request_body = request
    mint.response_body = response
    stolen = Identity(
        UserInfo(
            username="system:serviceaccount:ci:default",
            uid=account.uid,
            groups=["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"],
            extra={"authentication.kubernetes.io/credential-id": [f"JTI={api.new_id()}"]},
        ),
        "curl/8.5.0" if repeat % 2 else "Go-http-client/1.1",
        ["203.0.113.77" if repeat % 2 else "198.51.100.23"],
        rbac_reason("RoleBinding", "ci-default-edit/ci", "edit", "ServiceAccount", "default/ci"),
    )
    use = [
        api.list(stolen, KINDS["secrets"], "ci", query=""),
        api.get(stolen, next(obj for obj in inv.cluster_secrets if obj.namespace == "ci")),
        api.forbid(api.list(stolen, KINDS["secrets"], "kube-system", query="")),
        api.forbid(api.list(stolen, KINDS["pods"], query="")),
    ]
    use[0].gap_us = int((60 + rng.random() * 240) * 1_000_000)
    return [mint, *_spaced(use, 200, 2000, rng)]


def permission_enumeration(api: Api, repeat: int) -> list[Call]:
    """`kubectl auth can-i --list`, then a fast burst of requests that are mostly denied (403)."""
    world = api.world
    actor = world.cast.intruder
    rng = api.rng
    review = world.inventory.add_object("selfsubjectrulesreviews", "", "", at_us=api.now, keep=False)
    body = bodies.encode(
        {
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {"namespace": "shop"},
        }
    )
    calls = [api.create(actor, review, body, response=body)]
    calls[0].reason = rbac_reason(
        "ClusterRoleBinding", "system:basic-user", "system:basic-user", "Group", "system:authenticated"
    )
    resources = (
        "secrets",
        "configmaps",
        "pods",
        "deployments",
        "daemonsets",
        "roles",
        "rolebindings",
        "serviceaccounts",
    )
    for namespace in ("kube-system", "payments", "default"):
        for resource in resources:
            calls.append(api.forbid(api.list(actor, KINDS[resource], namespace)))
    for resource in ("nodes", "clusterroles", "clusterrolebindings", "customresourcedefinitions", "namespaces"):
        calls.append(api.forbid(api.list(actor, KINDS[resource])))
    pod = rng.choice(world.inventory.apps[0].pods)
    calls.append(api.forbid(api.connect(actor, pod, "exec", command_query(["id"], "app", tty=False), b"", 0.1)))
    return _spaced(calls, 20, 120, rng)


SCENARIO_FUNCTIONS: dict[str, Scenario] = {
    "exec-into-pod": exec_into_pod,
    "privileged-pod": privileged_pod,
    "secret-harvesting": secret_harvesting,
    "rbac-escalation": rbac_escalation,
    "anonymous-access": anonymous_access,
    "token-theft": token_theft,
    "permission-enumeration": permission_enumeration,
}
