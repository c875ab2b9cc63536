"""Optional extras: what each needs, and the one-line error naming the extra when it is not installed."""

from __future__ import annotations

import importlib

from kubetrail.errors import KubetrailError

EXTRAS: dict[str, tuple[str, str]] = {
    "nats": ("nats", "the NATS client (nats-py)"),
    "spark": ("pyspark", "Apache Spark (pyspark)"),
    "aws": ("boto3", "the AWS SDK for Python (boto3)"),
    "gcp": ("google.cloud.pubsub_v1", "the Google Cloud SDK for Python (google-cloud-pubsub, PyJWT)"),
    "azure": ("azure.storage.blob", "the Azure SDK for Python (azure-storage-blob, azure-eventhub)"),
}


class MissingExtraError(KubetrailError):
    """A feature whose optional dependencies are not installed."""

    def __init__(self, feature: str, extra: str) -> None:
        _, what = EXTRAS[extra]
        self.extra = extra
        self.hint = f"pip install 'kubetrail[{extra}]'"
        super().__init__(f"{feature} needs {what}, which is not installed (the `{extra}` extra)")


def require(extra: str, feature: str, module: str | None = None) -> None:
    """Raise MissingExtraError unless the extra's module (or `module`, the part of it the feature uses) imports."""
    try:
        importlib.import_module(module or EXTRAS[extra][0])
    except ImportError:
        raise MissingExtraError(feature, extra) from None
