"""Errors of the store: each says which file is involved and how to fix it."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class StoreError(KubetrailError):
    """A store that cannot be opened, read or written; names the path involved."""

    def __init__(self, message: str, *, path: str = "", hint: str = "") -> None:
        self.message = message
        self.path = path
        self.hint = hint
        super().__init__(f"{path}: {message}" if path else message)


class NotDurableError(StoreError):
    """A batch that could not be made durable (disk full, I/O error, store closed): nothing was acknowledged.

    A receiver answers 503 so that the sender retries; dedup makes the retry safe.
    """


class StoreLockedError(StoreError):
    """Another process has the store open for writing."""
