"""RBAC from activity: roles granting exactly what a subject used, and granted permissions never used.

`rule_allows` is the RBAC authorizer's rule matching; `generate`/`render` write Roles and bindings from
observed requests; `parse_manifests`/`find_unused` report the least-privilege gap of existing RBAC.
"""

from kubetrail.rbac.errors import RbacError
from kubetrail.rbac.generate import CLUSTER, Generated, GenerateOptions, Subject, generate, object_name, render
from kubetrail.rbac.manifests import Binding, RbacSet, Role, aggregate, parse_manifests
from kubetrail.rbac.observed import Observed, observe, request_of, service_account_user
from kubetrail.rbac.rules import Request, Rule, rule_allows, rules_allow
from kubetrail.rbac.unused import Identity, Permission, UnusedReport, find_unused, identities_of

__all__ = [
    "CLUSTER",
    "Binding",
    "GenerateOptions",
    "Generated",
    "Identity",
    "Observed",
    "Permission",
    "RbacError",
    "RbacSet",
    "Request",
    "Role",
    "Rule",
    "Subject",
    "UnusedReport",
    "aggregate",
    "find_unused",
    "generate",
    "identities_of",
    "object_name",
    "observe",
    "parse_manifests",
    "render",
    "request_of",
    "rule_allows",
    "rules_allow",
    "service_account_user",
]
