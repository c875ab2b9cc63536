"""Lint checks on API groups: resources named in a group that does not serve them, and `group: "*"`.

A rule's group must match the request's exactly (or be `*`, every group), so `deployments` under
group `""` matches nothing and the rule silently does not apply. Only groups kube-apiserver itself
serves are checked: any other group may belong to a CRD or an aggregated API reusing a built-in name.
"""

from __future__ import annotations

from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.lint_context import LintContext
from kubetrail.policy.match import ALL_GROUPS

_SERVED_BY: dict[str, tuple[str, ...]] = {
    "": (
        "bindings", "componentstatuses", "configmaps", "endpoints", "events", "limitranges", "namespaces",
        "nodes", "persistentvolumeclaims", "persistentvolumes", "pods", "podtemplates",
        "replicationcontrollers", "resourcequotas", "secrets", "serviceaccounts", "services",
    ),
    "admissionregistration.k8s.io": (
        "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
        "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
    ),
    "apiextensions.k8s.io": ("customresourcedefinitions",),
    "apiregistration.k8s.io": ("apiservices",),
    "apps": ("controllerrevisions", "daemonsets", "deployments", "replicasets", "statefulsets"),
    "authentication.k8s.io": ("tokenreviews", "selfsubjectreviews"),
    "authorization.k8s.io": (
        "localsubjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews",
    ),
    "autoscaling": ("horizontalpodautoscalers",),
    "batch": ("cronjobs", "jobs"),
    "certificates.k8s.io": ("certificatesigningrequests", "clustertrustbundles"),
    "coordination.k8s.io": ("leases", "leasecandidates"),
    "discovery.k8s.io": ("endpointslices",),
    "events.k8s.io": ("events",),
    "flowcontrol.apiserver.k8s.io": ("flowschemas", "prioritylevelconfigurations"),
    "internal.apiserver.k8s.io": ("storageversions",),
    "networking.k8s.io": ("ingressclasses", "ingresses", "ipaddresses", "networkpolicies", "servicecidrs"),
    "node.k8s.io": ("runtimeclasses",),
    "policy": ("poddisruptionbudgets", "podsecuritypolicies"),
    "rbac.authorization.k8s.io": ("clusterrolebindings", "clusterroles", "rolebindings", "roles"),
    "resource.k8s.io": ("deviceclasses", "resourceclaims", "resourceclaimtemplates", "resourceslices"),
    "scheduling.k8s.io": ("priorityclasses",),
    "storage.k8s.io": (
        "csidrivers", "csinodes", "csistoragecapacities", "storageclasses", "volumeattachments",
        "volumeattributesclasses",
    ),
    "storagemigration.k8s.io": ("storageversionmigrations",),
}  # fmt: skip
# extensions/v1beta1 served deployments, daemonsets, replicasets, ingresses, networkpolicies and
# podsecuritypolicies until Kubernetes 1.16-1.22; today the group serves nothing.
_RETIRED_GROUPS = frozenset({"extensions"})
BUILT_IN_GROUPS = frozenset(_SERVED_BY) | _RETIRED_GROUPS

RESOURCE_GROUPS: dict[str, tuple[str, ...]] = {}
for _group, _resources in _SERVED_BY.items():
    for _resource in _resources:
        RESOURCE_GROUPS[_resource] = (*RESOURCE_GROUPS.get(_resource, ()), _group)


def _show(group: str) -> str:
    return f'"{group}"' if group else '"" (core)'


def _core_suggestion(name: str) -> str:
    core = _SERVED_BY[""]
    candidates = (name.lower(), f"{name.lower()}s", f"{name.lower()}es", f"{name.lower()[:-1]}ies")
    for candidate in candidates:
        if candidate in core:
            return candidate
    return ""


def check_resource_groups(ctx: LintContext) -> list[PolicyIssue]:
    """Built-in resources listed under the wrong API group, and names the core group does not serve."""
    findings: list[PolicyIssue] = []
    for index, rule in enumerate(ctx.rules):
        for position, entry in enumerate(rule.resources):
            if entry.group not in BUILT_IN_GROUPS:
                continue
            for item, spec in enumerate(entry.resources):
                resource = spec.partition("/")[0]
                if resource == "*" or not resource:
                    continue
                path = ("rules", index, "resources", position, "resources", item)
                groups = RESOURCE_GROUPS.get(resource)
                if groups is not None and entry.group not in groups:
                    right = groups[0]
                    message = (
                        f'"{spec}" is not served by API group {_show(entry.group)} but by {_show(right)}: '
                        f"this entry never matches it"
                    )
                    hint = f'list "{spec}" under an entry with group: "{right}"'
                    findings.append(
                        ctx.finding("wrong-api-group", Severity.WARNING, message, hint, rule=index, path=path)
                    )
                elif groups is None and entry.group == "":
                    suggestion = _core_suggestion(resource)
                    hint = (
                        f'write "{suggestion}": resources are lower-case plurals, compared exactly'
                        if suggestion
                        else 'check the name with "kubectl api-resources"; a CRD is never in the core group'
                    )
                    message = f'the core API group has no resource "{resource}": this entry never matches it'
                    findings.append(
                        ctx.finding("unknown-resource", Severity.WARNING, message, hint, rule=index, path=path)
                    )
    return findings


def check_all_groups(ctx: LintContext) -> list[PolicyIssue]:
    """`group: "*"` entries: valid from Kubernetes 1.36 on; an older apiserver refuses the policy file."""
    findings: list[PolicyIssue] = []
    for index, rule in enumerate(ctx.rules):
        for position, entry in enumerate(rule.resources):
            if entry.group != ALL_GROUPS:
                continue
            message = (
                'group "*" matches every API group, the core group included; kube-apiserver accepts it from '
                "Kubernetes 1.36 on, and an older one rejects the whole policy file and does not start"
            )
            hint = 'for apiservers before 1.36, write one entry per group instead of group "*"'
            path = ("rules", index, "resources", position, "group")
            findings.append(ctx.finding("all-groups-needs-1.36", Severity.INFO, message, hint, rule=index, path=path))
    return findings
