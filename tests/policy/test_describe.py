"""describe_rule: one-line rule summaries that cannot be misread."""

from __future__ import annotations

from kubetrail.model.policy import GroupResources, PolicyRule
from kubetrail.policy.describe import describe_rule


def test_every_group_is_not_written_like_a_subresource_wildcard() -> None:
    """`*/status` already means "the status subresource of anything", so group "*" is spelled out."""
    rule = PolicyRule(
        level="None",
        verbs=["update"],
        resources=[GroupResources(group="*", resources=["*/status"]), GroupResources(group="*")],
    )
    assert describe_rule(rule) == "verbs=update; resources=*/status (every group), * (every group)"


def test_named_groups_keep_their_prefix() -> None:
    rule = PolicyRule(level="None", resources=[GroupResources(resources=["pods"]), GroupResources(group="apps")])
    assert describe_rule(rule) == "resources=pods, apps/*"
