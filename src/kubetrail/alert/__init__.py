"""Alerts: the records detection produces and the outputs that deliver them."""

from __future__ import annotations

from kubetrail.alert.record import Alert, Priority

__all__ = ["Alert", "Priority"]
