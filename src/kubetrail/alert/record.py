"""The alert record: one rule match on one event (defined by detection, which produces it)."""

from __future__ import annotations

from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority

__all__ = ["Alert", "Priority"]
