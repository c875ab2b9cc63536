"""The durable store: WAL with group commit, sealed Parquet partitions, a hash-chained manifest, DuckDB views.

`Store` is the entry point; see `kubetrail.store.store` for the API and docs/storage.md for the format.
"""

from kubetrail.store.columns import FILE_SCHEMA, TAIL_SCHEMA, dedup_key
from kubetrail.store.errors import NotDurableError, StoreError, StoreLockedError
from kubetrail.store.manifest import FileRecord
from kubetrail.store.retention import RetentionPlan
from kubetrail.store.store import AppendResult, Durable, DurableListener, Store, StoreOptions, StoreStats, check_cluster
from kubetrail.store.verify import Finding, VerifyReport, verify_store
from kubetrail.store.wal import FileOps

__all__ = [
    "FILE_SCHEMA",
    "TAIL_SCHEMA",
    "AppendResult",
    "Durable",
    "DurableListener",
    "FileOps",
    "FileRecord",
    "Finding",
    "NotDurableError",
    "RetentionPlan",
    "Store",
    "StoreError",
    "StoreLockedError",
    "StoreOptions",
    "StoreStats",
    "VerifyReport",
    "check_cluster",
    "dedup_key",
    "verify_store",
]
