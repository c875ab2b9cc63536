"""Errors of the RBAC area: manifests that cannot be read and invocations that cannot run."""

from __future__ import annotations

from kubetrail.errors import KubetrailError


class RbacError(KubetrailError):
    """An RBAC manifest or request that cannot be used; names the file, document and field involved."""

    def __init__(
        self, message: str, *, source: str = "", line: int | None = None, field: str = "", hint: str = ""
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        self.hint = hint
        where = source if line is None else f"{source}:{line}"
        if field:
            where = f"{where}: {field}" if where else field
        super().__init__(f"{where}: {message}" if where else message)
