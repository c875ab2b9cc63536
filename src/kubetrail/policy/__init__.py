"""The audit policy engine: load and validate exactly as kube-apiserver does, evaluate, lint, explain."""

from kubetrail.policy.issues import PolicyError, PolicyIssue, Severity
from kubetrail.policy.load import LoadedPolicy, load_policy, load_policy_bytes
from kubetrail.policy.validate import validate_policy

__all__ = [
    "LoadedPolicy",
    "PolicyError",
    "PolicyIssue",
    "Severity",
    "load_policy",
    "load_policy_bytes",
    "validate_policy",
]
