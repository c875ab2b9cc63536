"""Validate a policy with the apiserver's checks, field paths and wording, reporting every error at once."""

from __future__ import annotations

import re
from collections.abc import Callable

from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy.issues import PolicyIssue, Severity
from kubetrail.policy.match import ALL_GROUPS
from kubetrail.policy.source import FieldPath, format_field_path

VALID_LEVELS = ("None", "Metadata", "Request", "RequestResponse")
VALID_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

LineLookup = Callable[[FieldPath], "int | None"]


def _go_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _go_list(values: list[str]) -> str:
    return "[]string{" + ", ".join(_go_quote(value) for value in values) + "}"


def dns_subdomain_errors(value: str) -> list[str]:
    """The apiserver's `IsDNS1123Subdomain` messages for `value` (empty when valid)."""
    errors: list[str] = []
    if len(value) > _DNS1123_SUBDOMAIN_MAX:
        errors.append(f"must be no more than {_DNS1123_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(_DNS1123_SUBDOMAIN_ERROR)
    return errors


class _Collector:
    def __init__(self, source: str, line_of: LineLookup | None) -> None:
        self.source = source
        self.line_of = line_of
        self.issues: list[PolicyIssue] = []

    def add(
        self, path: FieldPath, message: str, hint: str, rule: int | None = None, at: FieldPath | None = None
    ) -> None:
        """Record an error on `path` (the apiserver's field path); `at` locates it more precisely in the file."""
        line = self.line_of(at or path) if self.line_of is not None else None
        self.issues.append(
            PolicyIssue(
                severity=Severity.ERROR,
                field=format_field_path(path),
                message=message,
                source=self.source,
                line=line,
                hint=hint,
                rule=rule,
                code="invalid",
            )
        )

    def required(self, path: FieldPath, hint: str, rule: int | None) -> None:
        self.add(path, "Required value", hint, rule)

    def invalid(
        self, path: FieldPath, shown: str, detail: str, hint: str, rule: int | None, at: FieldPath | None = None
    ) -> None:
        self.add(path, f"Invalid value: {shown}: {detail}", hint, rule, at)


def _validate_stages(stages: list[str], path: FieldPath, out: _Collector, rule: int | None) -> None:
    for index, stage in enumerate(stages):
        if stage not in VALID_STAGES:
            out.invalid(
                (*path, index),
                _go_quote(stage),
                "allowed stages are " + ",".join(VALID_STAGES),
                f"use one of {', '.join(VALID_STAGES)} (case-sensitive)",
                rule,
            )


def _validate_level(level: str, path: FieldPath, out: _Collector, rule: int) -> None:
    if level in VALID_LEVELS:
        return
    if level == "":
        out.required(path, "every rule needs a level: None, Metadata, Request or RequestResponse", rule)
        return
    supported = ", ".join(_go_quote(name) for name in VALID_LEVELS)
    out.add(
        path,
        f"Unsupported value: {_go_quote(level)}: supported values: {supported}",
        "levels are case-sensitive: None, Metadata, Request or RequestResponse",
        rule,
    )


def _validate_urls(urls: list[str], path: FieldPath, out: _Collector, rule: int) -> None:
    for index, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            out.invalid(
                (*path, index),
                _go_quote(url),
                "non-resource URL rules must begin with a '/' character",
                f"write it as '/{url.lstrip('/')}'",
                rule,
            )
        if url and "*" in url[:-1]:
            out.invalid(
                (*path, index),
                _go_quote(url),
                "non-resource URL wildcards '*' must be the final character of the rule",
                "a '*' may only end a URL, e.g. '/healthz*'",
                rule,
            )


def _validate_resources(resources: list[GroupResources], path: FieldPath, out: _Collector, rule: int) -> None:
    for index, group_resources in enumerate(resources):
        group = group_resources.group
        if group and group != ALL_GROUPS:  # "" is the core group; "*" every group (Kubernetes 1.36+)
            messages = dns_subdomain_errors(group)
            if messages:
                out.add(
                    (*path, "group"),
                    f"Invalid value: {_go_quote(group)}: {','.join(messages)}",
                    "name the API group without a version, e.g. 'rbac.authorization.k8s.io'; '' is the core "
                    "group and '*' every group ('*.example.com' is not a pattern)",
                    rule,
                    (*path, index, "group"),
                )
        if group_resources.resourceNames and not group_resources.resources:
            out.invalid(
                (*path, "resourceNames"),
                _go_list(group_resources.resourceNames),
                "using resourceNames requires at least one resource",
                f"add the resources these names belong to under resources[{index}].resources",
                rule,
                (*path, index, "resourceNames"),
            )


def _validate_rule(rule: PolicyRule, index: int, out: _Collector) -> None:
    path: FieldPath = ("rules", index)
    _validate_level(rule.level, (*path, "level"), out, index)
    _validate_urls(rule.nonResourceURLs, (*path, "nonResourceURLs"), out, index)
    _validate_resources(rule.resources, (*path, "resources"), out, index)
    _validate_stages(rule.omitStages, (*path, "omitStages"), out, index)
    if rule.nonResourceURLs and (rule.resources or rule.namespaces):
        out.invalid(
            (*path, "nonResourceURLs"),
            _go_list(rule.nonResourceURLs),
            "rules cannot apply to both regular resources and non-resource URLs",
            "split this into two rules: one with resources/namespaces, one with nonResourceURLs",
            index,
        )


def validate_policy(
    policy: Policy, *, source: str = "<policy>", line_of: LineLookup | None = None
) -> list[PolicyIssue]:
    """Every error kube-apiserver's `ValidatePolicy` reports, in its order and wording."""
    out = _Collector(source, line_of)
    _validate_stages(policy.omitStages, ("omitStages",), out, None)
    for index, rule in enumerate(policy.rules):
        _validate_rule(rule, index, out)
    return out.issues
