"""Policy evaluation rate: events/s deciding level, stages and rule with a realistic 20-rule policy.

Two workloads of ≥200k events: (a) the shared realistic corpus, where request shapes repeat as
they do in a real cluster (target ≥1M events/s), and (b) the same events made pairwise distinct
(every user, namespace and object name unique), so no per-shape cache can help (target ≥200k/s).
Each repetition compiles the policy afresh, so cache warm-up is part of the measured time; the
rate is taken on process CPU time (evaluation is single-threaded), wall-clock rates are in the details.
Run alone with `python -m bench.bench_policy`; `KUBETRAIL_BENCH_SCALE=0.1` shrinks the workloads.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from bench.common import BenchResult
from bench.corpus import realistic_events, write_realistic_ndjson
from kubetrail.intake import read_events
from kubetrail.model import Event
from kubetrail.policy.attributes import attributes_from_event
from kubetrail.policy.evaluate import AuditDecision, compile_policy, evaluate
from kubetrail.policy.load import load_policy_bytes

NAME = "policy"
EVENTS = 200_000
SEED = 7
TARGET_REALISTIC = 1_000_000.0
TARGET_DISTINCT = 200_000.0
REPEAT = 5

# A production-style policy in the spirit of GKE's and the Kubernetes docs' examples: drop the
# high-volume system noise first, keep sensitive bodies out, record changes in full, catch the rest.
POLICY_YAML = b"""\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # 0: kube-proxy watching services and endpoints
  - level: None
    users: ["system:kube-proxy"]
    verbs: [watch]
    resources:
      - group: ""
        resources: [endpoints, services, services/status]
      - group: discovery.k8s.io
        resources: [endpointslices]
  # 1: kubelets reading their own node and renewing node leases
  - level: None
    userGroups: ["system:nodes"]
    verbs: [get, update, patch]
    resources:
      - group: ""
        resources: [nodes, nodes/status]
      - group: coordination.k8s.io
        resources: [leases]
  # 2: leader election of the control plane
  - level: None
    users:
      - system:kube-controller-manager
      - system:kube-scheduler
      - system:serviceaccount:kube-system:endpoint-controller
    verbs: [get, update]
    namespaces: [kube-system]
    resources:
      - group: ""
        resources: [endpoints, configmaps]
      - group: coordination.k8s.io
        resources: [leases]
  # 3: the apiserver's own namespace housekeeping
  - level: None
    users: ["system:apiserver"]
    verbs: [get]
    resources:
      - group: ""
        resources: [namespaces, namespaces/status, namespaces/finalize]
  # 4: the cluster autoscaler's status configmap
  - level: None
    users: ["cluster-autoscaler"]
    verbs: [get, update]
    namespaces: [kube-system]
    resources:
      - group: ""
        resources: [configmaps]
        resourceNames: [cluster-autoscaler-status]
  # 5: metrics scraping of the controller manager
  - level: None
    users: ["system:kube-controller-manager"]
    verbs: [get, list]
    resources:
      - group: metrics.k8s.io
  # 6: health, version and discovery endpoints
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", /version, "/swagger*", "/openapi*"]
  # 7: events are high volume and low value
  - level: None
    resources:
      - group: ""
        resources: [events]
      - group: events.k8s.io
        resources: [events]
  # 8: node and pod status updates by kubelets and the node controller: the request is enough
  - level: Request
    users: ["kubelet", "system:node-problem-detector", "system:serviceaccount:kube-system:node-controller"]
    verbs: [update, patch]
    resources:
      - group: ""
        resources: [nodes/status, pods/status]
    omitStages: [RequestReceived]
  - level: Request
    userGroups: ["system:nodes"]
    verbs: [update, patch]
    resources:
      - group: ""
        resources: [nodes/status, pods/status]
  # 10: namespace deletion sweeps by the namespace controller
  - level: Request
    users: ["system:serviceaccount:kube-system:namespace-controller"]
    verbs: [deletecollection]
  # 11: the cluster's identity configmaps in full
  - level: RequestResponse
    namespaces: [kube-system, kube-public]
    resources:
      - group: ""
        resources: [configmaps]
        resourceNames: [cluster-info, kubeadm-config, coredns]
  # 12: never record secret, configmap or token bodies
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, configmaps, serviceaccounts/token]
      - group: authentication.k8s.io
        resources: [tokenreviews]
  # 13: interactive access to containers
  - level: RequestResponse
    verbs: [create, get]
    resources:
      - group: ""
        resources: [pods/exec, pods/attach, pods/portforward, pods/proxy, services/proxy, nodes/proxy]
  # 14: RBAC changes in full
  - level: RequestResponse
    verbs: [create, update, patch, delete, deletecollection, bind, escalate]
    resources:
      - group: rbac.authorization.k8s.io
  # 15: admission and CRD changes in full
  - level: RequestResponse
    verbs: [create, update, patch, delete]
    resources:
      - group: admissionregistration.k8s.io
      - group: apiextensions.k8s.io
  # 16: reads of the known groups: metadata is enough
  - level: Metadata
    verbs: [get, list, watch]
    resources:
      - group: ""
      - group: apps
      - group: batch
      - group: autoscaling
      - group: networking.k8s.io
      - group: policy
      - group: storage.k8s.io
      - group: coordination.k8s.io
      - group: discovery.k8s.io
  # 17: writes to the known groups in full
  - level: RequestResponse
    resources:
      - group: ""
      - group: apps
      - group: batch
      - group: autoscaling
      - group: networking.k8s.io
      - group: policy
      - group: storage.k8s.io
      - group: coordination.k8s.io
      - group: discovery.k8s.io
    omitManagedFields: true
  # 18: metrics scraping
  - level: None
    nonResourceURLs: [/metrics]
  # 19: everything else
  - level: Metadata
"""


def scaled(count: int) -> int:
    """`count` times KUBETRAIL_BENCH_SCALE (default 1), at least 1000."""
    return max(1000, int(count * float(os.environ.get("KUBETRAIL_BENCH_SCALE", "1"))))


def corpus_events(count: int, seed: int = SEED) -> list[Event]:
    """The shared realistic corpus: from its cached NDJSON file when possible (fast), else generated."""
    try:
        return list(read_events(write_realistic_ndjson(None, count, seed)))
    except OSError:
        return realistic_events(count, seed)


def distinct_events(events: list[Event]) -> list[Event]:
    """The same requests, each made unique: its own user, namespace (if namespaced), name and group."""
    unique: list[Event] = []
    for index, event in enumerate(events):
        user = msgspec.structs.replace(
            event.user, username=f"user-{index}", groups=[f"team-{index}", *event.user.groups]
        )
        ref = event.objectRef
        if ref is not None:
            ref = msgspec.structs.replace(
                ref, namespace=f"ns-{index}" if ref.namespace else "", name=f"{ref.name or 'obj'}-{index}"
            )
        unique.append(msgspec.structs.replace(event, user=user, objectRef=ref))
    return unique


def _rate(events: list[Event]) -> tuple[float, float, list[AuditDecision]]:
    """Events/s on the best run by CPU time (robust when other work shares the machine) and by wall clock."""
    policy = load_policy_bytes(POLICY_YAML, source="bench").policy
    best_cpu = best_wall = float("inf")
    decisions: list[AuditDecision] = []
    for _ in range(REPEAT):
        compiled = compile_policy(policy)  # cold caches every time
        wall, cpu = time.perf_counter(), time.process_time()
        decisions = compiled.evaluate_events(events)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return len(events) / best_cpu, len(events) / best_wall, decisions


def _checked(events: list[Event], decisions: list[AuditDecision], sample: int = 2000) -> None:
    """The fast path must give the reference checker's answer (checked on an even sample)."""
    policy = load_policy_bytes(POLICY_YAML, source="bench").policy
    step = max(1, len(events) // sample)
    for index in range(0, len(events), step):
        expected = evaluate(policy, attributes_from_event(events[index]))
        if decisions[index] != expected:
            raise AssertionError(f"event {index}: compiled {decisions[index]} != reference {expected}")


def _rules_hit(decisions: list[AuditDecision]) -> dict[str, int]:
    counts = Counter("none" if decision.rule_index is None else str(decision.rule_index) for decision in decisions)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _shapes(events: list[Event]) -> int:
    return len({(e.user.username, e.verb, e.objectRef.namespace if e.objectRef else e.path) for e in events})


def _measure(label: str, events: list[Event], target: float, metric: str) -> BenchResult:
    rate, wall_rate, decisions = _rate(events)
    _checked(events, decisions)
    detail: dict[str, Any] = {
        "events": len(events),
        "wall_events_per_s": round(wall_rate),
        "rules": 20,
        "distinct_user_verb_target": _shapes(events),
        "rules_hit": _rules_hit(decisions),
        "workload": label,
    }
    return BenchResult(NAME, metric, rate, "events/s", target=target, detail=detail)


def run() -> list[BenchResult]:
    """Evaluation rate on the realistic corpus and on all-distinct requests."""
    count = scaled(EVENTS)
    events = corpus_events(count)
    steps: list[tuple[str, Callable[[], list[Event]], float, str]] = [
        ("realistic corpus", lambda: events, TARGET_REALISTIC, "evaluate events/s, realistic corpus (20 rules)"),
        ("every request distinct", lambda: distinct_events(events), TARGET_DISTINCT, "evaluate events/s, all distinct"),
    ]
    return [_measure(label, make(), target, metric) for label, make, target, metric in steps]


if __name__ == "__main__":
    from rich.console import Console

    from bench.__main__ import render

    render(run(), Console())
