"""A person's Deployment and what the control plane does about it, with owner references in every body.

As Kubernetes documents it: the deployment-controller creates a ReplicaSet named `<deployment>-<pod-template-hash>`
owned by the Deployment (ownerReferences with its uid), the replicaset-controller creates Pods from
`generateName: <replicaset>-` owned by the ReplicaSet, the scheduler binds each (`pods/binding`) and the node's
kubelet reports it running (`pods/status`). Deleting the Deployment (background propagation) leaves the garbage
collector to delete the ReplicaSet, then its Pods, whose kubelets finish the deletion.
"""

from __future__ import annotations

import random

from kubetrail.emit.generator import bodies
from kubetrail.emit.generator.calls import Api, Call
from kubetrail.emit.generator.identities import Identity
from kubetrail.emit.generator.ids import name_suffix, template_hash
from kubetrail.emit.generator.workloads import Obj

NAMESPACE = "shop"
_NAMES = ("canary-web", "docs-preview", "load-tester", "report-builder")
_IMAGE = "nginx:1.27.1"
_REPLICAS = 2


def _kubelet(api: Api, node: str) -> Identity:
    cast = api.world.cast
    for identity, member in zip(cast.kubelets, cast.nodes, strict=True):
        if member.name == node:
            return identity
    return cast.kubelets[0]


def _workers(api: Api) -> list[str]:
    nodes = api.world.cast.nodes
    return [node.name for node in nodes if not node.control_plane] or [node.name for node in nodes]


class Rollout:
    """One Deployment's life: `create()` plans its creation and the controllers' follow-ups, `delete()` its end."""

    def __init__(self, api: Api, repeat: int) -> None:
        inv = api.world.inventory
        name = _NAMES[repeat % len(_NAMES)]
        self.person = api.world.cast.humans[0]
        self.deployment = inv.add_object("deployments", NAMESPACE, name, at_us=api.now, app=name, keep=False)
        self.deployment.spec = {"image": _IMAGE, "replicas": _REPLICAS, "port": 80, "generation": 1}
        pod_hash = template_hash(api.rng)
        self.replicaset = inv.add_object(
            "replicasets", NAMESPACE, f"{name}-{pod_hash}", at_us=api.now, app=name, keep=False
        )
        self.replicaset.owner = self.deployment
        self.replicaset.labels = {"app": name, "pod-template-hash": pod_hash}
        workers = _workers(api)
        self.pods: list[Obj] = []
        for index in range(_REPLICAS):
            pod = inv.add_object(
                "pods",
                NAMESPACE,
                f"{self.replicaset.name}-{name_suffix(api.rng)}",
                at_us=api.now,
                app=name,
                node=workers[(repeat + index) % len(workers)],
                keep=False,
            )
            pod.owner = self.replicaset
            pod.labels = dict(self.replicaset.labels)
            pod.spec = {"image": _IMAGE, "port": 80, "ip": f"10.244.{1 + index}.{10 + api.rng.randrange(240)}"}
            self.pods.append(pod)

    def create(self, api: Api) -> list[Call]:
        """`kubectl create deployment`, then the deployment-controller, replicaset-controller, scheduler, kubelets."""
        cast = api.world.cast
        inv = api.world.inventory
        deployment, replicaset = self.deployment, self.replicaset
        created = bodies.deployment_body(deployment, api.clock)
        created["spec"]["template"]["spec"]["serviceAccountName"] = "default"
        asked = {key: value for key, value in created.items() if key != "status"}
        asked["metadata"] = {"name": deployment.name, "namespace": NAMESPACE, "labels": {"app": deployment.name}}
        calls = [
            api.create(
                self.person,
                deployment,
                bodies.encode(asked),
                query="fieldManager=kubectl-create&fieldValidation=Strict",
                response=bodies.encode(created),
            )
        ]
        deployments = cast.controllers["deployment-controller"]
        replicasets = cast.controllers["replicaset-controller"]
        rs_body = {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": bodies.metadata(
                replicaset, api.clock, extra={"annotations": {"deployment.kubernetes.io/revision": "1"}}
            ),
            "spec": {
                "replicas": _REPLICAS,
                "selector": {"matchLabels": dict(replicaset.labels)},
                "template": {
                    "metadata": {"labels": dict(replicaset.labels)},
                    "spec": created["spec"]["template"]["spec"],
                },
            },
            "status": {"replicas": 0},
        }
        rs_create = api.create(deployments, replicaset, bodies.encode(rs_body), response=bodies.encode(rs_body))
        rs_create.gap_us = 30_000 + api.rng.randrange(30_000)
        calls.append(rs_create)
        inv.touch(deployment)
        status = api.update(deployments, deployment, bodies.encode(created), subresource="status")
        status.gap_us = 8_000
        calls.append(status)
        for pod in self.pods:
            full = bodies.pod_body(pod, api.clock)
            full["spec"]["serviceAccountName"] = "default"
            full["spec"].pop("nodeName")
            request = {key: value for key, value in full.items() if key != "status"}
            request["metadata"] = {
                key: value
                for key, value in full["metadata"].items()
                if key in ("generateName", "namespace", "labels", "ownerReferences")
            }
            full["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            made = api.create(replicasets, pod, bodies.encode(request), response=bodies.encode(full))
            made.gap_us = 10_000 + api.rng.randrange(10_000)
            calls.append(made)
        for pod in self.pods:
            calls.append(self._binding(api, pod))
        for pod in self.pods:
            running = bodies.pod_body(pod, api.clock)
            running["spec"]["serviceAccountName"] = "default"
            patch = bodies.encode(
                {
                    "metadata": {"uid": pod.uid},
                    "status": {"phase": "Running", "podIP": pod.spec["ip"], "conditions": [{"type": "Ready"}]},
                }
            )
            inv.touch(pod)
            report = api.patch(
                _kubelet(api, pod.node), pod, patch, subresource="status", response=bodies.encode(running)
            )
            report.gap_us = 1_500_000 + api.rng.randrange(1_500_000)
            calls.append(report)
        inv.touch(replicaset)
        rs_body["status"] = {"replicas": _REPLICAS, "readyReplicas": _REPLICAS, "availableReplicas": _REPLICAS}
        rs_status = api.update(replicasets, replicaset, bodies.encode(rs_body), subresource="status")
        rs_status.gap_us = 50_000
        calls.append(rs_status)
        return calls

    def _binding(self, api: Api, pod: Obj) -> Call:
        """The scheduler's `pods/binding` create: a Binding naming the pod (and its uid) and the chosen node."""
        binding = {
            "kind": "Binding",
            "apiVersion": "v1",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"kind": "Node", "name": pod.node},
        }
        call = api.get(api.world.cast.scheduler, pod, subresource="binding")
        call.verb = "create"
        call.code = 201
        call.request_body = bodies.encode(binding)
        call.response_body = bodies.status(201)
        call.gap_us = 5_000 + api.rng.randrange(20_000)
        return call

    def delete(self, api: Api) -> list[Call]:
        """`kubectl delete deployment`; the garbage collector deletes the ReplicaSet and its Pods, kubelets finish."""
        cast = api.world.cast
        collector = cast.controllers["generic-garbage-collector"]
        person = api.delete(self.person, self.deployment)
        details = {"name": self.deployment.name, "group": "apps", "kind": "deployments", "uid": self.deployment.uid}
        person.response_body = bodies.encode(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )
        calls = [person]
        rs = api.delete(collector, self.replicaset)
        rs.gap_us = 40_000 + api.rng.randrange(40_000)
        calls.append(rs)
        for pod in self.pods:
            gone = api.delete(collector, pod)
            gone.gap_us = 20_000 + api.rng.randrange(20_000)
            calls.append(gone)
        for pod in self.pods:
            final = api.delete(_kubelet(api, pod.node), pod)
            final.request_body = bodies.encode({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
            final.gap_us = 2_000_000 + api.rng.randrange(3_000_000)
            calls.append(final)
        return calls


def rollout_times(span_us: int, rng: random.Random) -> list[tuple[int, int | None]]:
    """(create µs, delete µs or None) of each rollout: one per hour of the span (at least one), each deleted
    12 to 14 minutes later when that still falls inside the span (past the default cascade horizon)."""
    count = max(1, round(span_us / 3_600_000_000))
    planned: list[tuple[int, int | None]] = []
    for index in range(count):
        at = max(1, int(span_us * (index + 0.3 + 0.2 * rng.random()) / count))
        end = at + int((12 + 2 * rng.random()) * 60_000_000)
        planned.append((at, end if end < span_us else None))
    return planned
