"""Bulk readers: native audit logs (NDJSON, gzip, rotated sets) and managed-cloud exports (EKS, GKE, AKS).

`read_file(path, format)` yields `ReadBatch`es; `expand_inputs` turns FILE arguments (files, directories,
globs) into an ordered list, rotated backups oldest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from kubetrail.collect.readers.aks import read_aks
from kubetrail.collect.readers.base import ReadBatch, ReaderError, Rejected
from kubetrail.collect.readers.detect import FORMATS, detect_format, format_of
from kubetrail.collect.readers.eks import read_eks
from kubetrail.collect.readers.gke import read_gke
from kubetrail.collect.readers.k8s import read_k8s
from kubetrail.collect.readers.rotated import expand_inputs, order_rotated

READERS: dict[str, Callable[[Path], Iterator[ReadBatch]]] = {
    "k8s": read_k8s,
    "eks": read_eks,
    "gke": read_gke,
    "aks": read_aks,
}


def read_file(path: Path, format: str = "auto") -> Iterator[ReadBatch]:
    """Batches of events from one file; `format` is one of FORMATS or `auto` (detected from the content)."""
    chosen = detect_format(path) if format == "auto" else format
    if chosen not in READERS:
        raise ReaderError(f"unknown format {chosen!r}", source=str(path), hint=f"use one of {', '.join(FORMATS)}")
    return READERS[chosen](path)


__all__ = [
    "FORMATS",
    "READERS",
    "ReadBatch",
    "ReaderError",
    "Rejected",
    "detect_format",
    "expand_inputs",
    "format_of",
    "order_rotated",
    "read_file",
]
