"""Lint check for high-volume, low-value requests the policy still records.

Each category is a handful of representative requests a real cluster sends all the time
(controllers' watches, kubelets' lease renewals and node gets, health probes, events);
a category is reported when any of them is recorded, naming the rule that records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.lint_context import (
    ANONYMOUS,
    APP_SERVICE_ACCOUNT,
    CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBELET,
    PROMETHEUS,
    SCHEDULER,
    LintContext,
    Probe,
    records_anything,
    resource_probe,
    url_probe,
)


@dataclass(frozen=True)
class NoiseCategory:
    """A kind of routine traffic, why it is noise, and the rule that drops it."""

    name: str
    why: str
    fix: str
    probes: tuple[Probe, ...]


NOISE_CATEGORIES = (
    NoiseCategory(
        "watch requests",
        "every informer re-opens its watches every few minutes, each logged at ResponseStarted and ResponseComplete",
        '"- level: None" with verbs: ["watch"]',
        (
            resource_probe(CONTROLLER_MANAGER, "watch", "pods"),
            resource_probe(SCHEDULER, "watch", "pods"),
            resource_probe(KUBELET, "watch", "pods"),
            resource_probe(APP_SERVICE_ACCOUNT, "watch", "configmaps", namespace="team-a"),
        ),
    ),
    NoiseCategory(
        "kube-proxy watches",
        "kube-proxy on every node watches services and endpoints",
        '"- level: None" with users: ["system:kube-proxy"], verbs: ["watch"] '
        '(resources: endpoints, services in group "" and endpointslices in discovery.k8s.io)',
        (
            resource_probe(KUBE_PROXY, "watch", "endpoints"),
            resource_probe(KUBE_PROXY, "watch", "services"),
            resource_probe(KUBE_PROXY, "watch", "endpointslices", group="discovery.k8s.io"),
        ),
    ),
    NoiseCategory(
        "health checks",
        "load balancers and kubelet probes poll these every few seconds, usually unauthenticated",
        '"- level: None" with nonResourceURLs: ["/healthz*", "/livez*", "/readyz*"] (no users or userGroups)',
        tuple(url_probe(ANONYMOUS, path) for path in ("/healthz", "/livez", "/readyz", "/readyz/etcd")),
    ),
    NoiseCategory(
        "metrics scrapes",
        "Prometheus scrapes /metrics every 15-30 seconds",
        '"- level: None" with nonResourceURLs: ["/metrics"]',
        (url_probe(PROMETHEUS, "/metrics"),),
    ),
    NoiseCategory(
        "lease renewals",
        "every kubelet renews its node lease every 10 seconds and leader election renews every 2 seconds",
        '"- level: None" with resources: [{group: "coordination.k8s.io", resources: ["leases"]}]',
        (
            resource_probe(
                KUBELET, "update", "leases", group="coordination.k8s.io", namespace="kube-node-lease", name="node-1"
            ),
            resource_probe(
                KUBELET, "get", "leases", group="coordination.k8s.io", namespace="kube-node-lease", name="node-1"
            ),
            resource_probe(
                CONTROLLER_MANAGER,
                "update",
                "leases",
                group="coordination.k8s.io",
                namespace="kube-system",
                name="kube-controller-manager",
            ),
        ),
    ),
    NoiseCategory(
        "events",
        "components write an Event for nearly every state change",
        '"- level: None" with resources: [{group: "", resources: ["events"]}, '
        '{group: "events.k8s.io", resources: ["events"]}]',
        (
            resource_probe(KUBELET, "create", "events", namespace="team-a"),
            resource_probe(KUBELET, "patch", "events", namespace="team-a", name="web-0.17f3a"),
            resource_probe(SCHEDULER, "create", "events", group="events.k8s.io", namespace="team-a"),
        ),
    ),
    NoiseCategory(
        "node gets by kubelets",
        "every kubelet reads its own Node object every 10 seconds",
        '"- level: None" with userGroups: ["system:nodes"], verbs: ["get"], '
        'resources: [{group: "", resources: ["nodes", "nodes/status"]}]',
        (resource_probe(KUBELET, "get", "nodes", name="node-1"),),
    ),
)


def check_noise(ctx: LintContext) -> list[PolicyIssue]:
    """Routine high-volume requests that are recorded instead of dropped at level None."""
    findings: list[PolicyIssue] = []
    for category in NOISE_CATEGORIES:
        for probe in category.probes:
            decision = ctx.decide(probe)
            if not records_anything(decision) or decision.rule_index is None:
                continue
            index = decision.rule_index
            message = (
                f'{category.name} are recorded: "{probe.text}" is logged at {decision.level} by rule {index} '
                f"({category.why})"
            )
            hint = f"add before rule {index}: {category.fix}"
            findings.append(ctx.finding("noise-not-dropped", Severity.WARNING, message, hint, rule=index))
            break
    return findings
