"""Audit events for store tests, shaped as kube-apiserver writes them (one request, one or more stages)."""

from __future__ import annotations

import msgspec

from kubetrail.model import Event, ObjectReference, Stage, Status, UserInfo
from kubetrail.model.event import Level


def make_event(
    number: int,
    *,
    stage: Stage = Stage.RESPONSE_COMPLETE,
    day: str = "2026-03-19",
    namespace: str = "default",
    verb: str = "get",
    resource: str = "pods",
    code: int = 200,
    user: str = "jane",
) -> Event:
    """A resource request event; `number` makes the auditID (and the time, by seconds) unique."""
    second = number % 86_400
    stamp = f"{day}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.{number % 1_000_000:06d}Z"
    return Event(
        level=Level.METADATA,
        auditID=f"00000000-0000-4000-8000-{number:012d}",
        stage=stage,
        requestURI=f"/api/v1/namespaces/{namespace}/{resource}/pod-{number}",
        verb=verb,
        user=UserInfo(username=user, groups=["system:authenticated"]),
        sourceIPs=["10.0.0.7"],
        userAgent="kubectl/v1.30.0 (linux/amd64) kubernetes/abcdef",
        objectRef=ObjectReference(resource=resource, namespace=namespace, name=f"pod-{number}", apiVersion="v1"),
        responseStatus=Status(metadata={}, code=code) if stage == Stage.RESPONSE_COMPLETE else None,
        requestReceivedTimestamp=stamp,
        stageTimestamp=stamp,
        annotations={"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    )


def make_events(start: int, count: int, **options: object) -> list[Event]:
    return [make_event(number, **options) for number in range(start, start + count)]  # type: ignore[arg-type]


def ndjson(events: list[Event]) -> bytes:
    encoder = msgspec.json.Encoder()
    return b"".join(encoder.encode(event) + b"\n" for event in events)
