"""Audit events at chosen times for stateful-rule tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubetrail.detect.context import EventContext
from kubetrail.model import decode_event
from tests.detect.helpers import event_dict

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def stamp(seconds: float) -> str:
    """The MicroTime stamp `seconds` after T0."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(seconds: float, *, user: str = "jane", code: int = 201, **changes: Any) -> EventContext:
    """An event whose stageTimestamp is `seconds` after T0, by `user`, answered with `code`."""
    data = event_dict(**changes)
    data["stageTimestamp"] = stamp(seconds)
    data["requestReceivedTimestamp"] = stamp(seconds)
    data["user"] = {"username": user, "groups": ["system:authenticated"]}
    data["responseStatus"] = {"metadata": {}, "code": code}
    data["auditID"] = f"id-{user}-{seconds}"
    raw = json.dumps(data).encode()
    return EventContext(decode_event(raw), "", raw)


def forbidden(ctx: EventContext) -> bool:
    status = ctx.event.responseStatus
    return status is not None and status.code == 403
