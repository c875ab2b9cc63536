from __future__ import annotations

import pytest

from kubetrail.policy import PolicyError, load_policy_bytes

GOOD = b"""apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""


def test_minimal_policy_loads() -> None:
    loaded = load_policy_bytes(GOOD)
    assert [rule.level for rule in loaded.policy.rules] == ["Metadata"]


def test_v1beta1_policy_is_refused_with_conversion_hint() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_bytes(GOOD.replace(b"audit.k8s.io/v1", b"audit.k8s.io/v1beta1"))
    assert "1.24" in str(caught.value)
    assert "audit.k8s.io/v1" in caught.value.hint
