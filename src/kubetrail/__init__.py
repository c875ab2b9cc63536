"""kubetrail: Kubernetes audit logging — policy, emit, collect, detect, store, query, report."""

__version__ = "0.1.0"
