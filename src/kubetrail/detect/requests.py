"""Detection per request, not per stage: the same alerts whichever stages an audit policy keeps.

The apiserver records a request at up to four stages (RequestReceived, ResponseStarted, ResponseComplete,
Panic), and policies keep different subsets (`omitStages`; managed clusters keep only ResponseComplete). Rules
written for one stage must not go blind under another, nor fire twice when several are kept:

- an exec, attach or portforward session is announced at ResponseStarted with 101 (Switching Protocols);
  when only its ResponseComplete (also 101) was recorded, the rules also see it as the ResponseStarted event the
  policy left out, so session rules (Falco's "Attach/Exec Pod" among them) still fire;
- each rule raises at most one alert per request (cluster, auditID), whichever of its stages matched first.

Memory stays small: only requests that raised an alert, or streaming sessions that started, are remembered,
the oldest forgotten first beyond `remember`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from kubetrail.detect.alert import Alert
from kubetrail.detect.context import EventContext
from kubetrail.detect.engine import Detector
from kubetrail.model import Event, Stage

STREAMING_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
SWITCHING_PROTOCOLS = 101
DEFAULT_REMEMBER = 200_000


def is_session_complete(event: Event) -> bool:
    """A finished exec/attach/portforward session: ResponseComplete of a request answered 101."""
    if event.stage is not Stage.RESPONSE_COMPLETE:
        return False
    status = event.responseStatus
    reference = event.objectRef
    return (
        status is not None
        and status.code == SWITCHING_PROTOCOLS
        and reference is not None
        and reference.subresource in STREAMING_SUBRESOURCES
    )


def as_started(event: Event) -> Event:
    """The ResponseStarted event the apiserver writes for a session (the response body is not sent yet)."""
    return msgspec.structs.replace(
        event,
        stage=Stage.RESPONSE_STARTED,
        stageTimestamp=event.requestReceivedTimestamp or event.stageTimestamp,
        responseObject=msgspec.Raw(),
    )


class _Request:
    __slots__ = ("fired", "started")

    def __init__(self) -> None:
        self.started = False
        self.fired: set[str] = set()


class OncePerRequest:
    """Wraps a detector so that its alerts are per request (see the module docstring)."""

    def __init__(self, inner: Detector, *, remember: int = DEFAULT_REMEMBER) -> None:
        self.inner = inner
        self.remember = remember
        self._requests: dict[tuple[str, str], _Request] = {}

    @property
    def detectors(self) -> Sequence[Any]:
        """The wrapped detector's own detectors (stateful rules), for checkpointing."""
        return (self.inner, *getattr(self.inner, "detectors", ()))

    def _entry(self, key: tuple[str, str]) -> _Request:
        requests = self._requests
        entry = requests.get(key)
        if entry is None:
            if len(requests) >= self.remember:
                for old in list(requests)[: max(1, self.remember // 4)]:
                    del requests[old]
            entry = requests[key] = _Request()
        return entry

    def forget(self, alerts: Sequence[Alert]) -> None:
        """Undo `detect`'s memory of these alerts (they were not delivered, and the batch will come again)."""
        for alert in alerts:
            entry = self._requests.get((alert.cluster or "", alert.audit_id))
            if entry is not None:
                entry.fired.discard(alert.rule)

    def detect(self, ctx: EventContext) -> list[Alert]:
        event = ctx.event
        key = (ctx.cluster, event.auditID)
        alerts: list[Alert] = []
        if event.stage is Stage.RESPONSE_STARTED:
            status = event.responseStatus
            if status is not None and status.code == SWITCHING_PROTOCOLS:
                self._entry(key).started = True
        elif is_session_complete(event):
            known = self._requests.get(key)
            if known is None or not known.started:
                self._entry(key).started = True
                alerts = self.inner.detect(EventContext(as_started(event), ctx.cluster, None))
        alerts.extend(self.inner.detect(ctx))
        if not alerts:
            return alerts
        fired = self._entry(key).fired
        kept: list[Alert] = []
        for alert in alerts:
            if alert.rule not in fired:
                fired.add(alert.rule)
                kept.append(alert)
        return kept
