"""Typed `audit.k8s.io/v1` Policy, PolicyRule and GroupResources."""

from __future__ import annotations

from typing import Any

import msgspec

POLICY_API_VERSION = "audit.k8s.io/v1"


class GroupResources(msgspec.Struct, omit_defaults=True):
    """Resources of one API group a rule applies to (`""` is the core group)."""

    group: str = ""
    resources: list[str] = msgspec.field(default_factory=list)
    resourceNames: list[str] = msgspec.field(default_factory=list)


class PolicyRule(msgspec.Struct, omit_defaults=True):
    """One rule: the level for requests matching every non-empty selector."""

    level: str = ""
    users: list[str] = msgspec.field(default_factory=list)
    userGroups: list[str] = msgspec.field(default_factory=list)
    verbs: list[str] = msgspec.field(default_factory=list)
    resources: list[GroupResources] = msgspec.field(default_factory=list)
    namespaces: list[str] = msgspec.field(default_factory=list)
    nonResourceURLs: list[str] = msgspec.field(default_factory=list)
    omitStages: list[str] = msgspec.field(default_factory=list)
    omitManagedFields: bool | None = None


class Policy(msgspec.Struct, omit_defaults=True):
    """An audit policy: rules evaluated in order, the first match wins."""

    rules: list[PolicyRule] = msgspec.field(default_factory=list)
    omitStages: list[str] = msgspec.field(default_factory=list)
    omitManagedFields: bool = False
    kind: str = "Policy"
    apiVersion: str = POLICY_API_VERSION
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
