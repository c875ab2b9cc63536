"""Configuration checks: is auditing on, retained and sound, per CIS Kubernetes Benchmark control."""

from kubetrail.check.apiserver import Finding, Status, check_apiserver
from kubetrail.check.manifest import ApiserverConfig, ManifestError, parse_config, read_config

__all__ = ["ApiserverConfig", "Finding", "ManifestError", "Status", "check_apiserver", "parse_config", "read_config"]
