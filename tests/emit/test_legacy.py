"""The legacy one-line format, field by field as the apiserver's audit.EventString lays it out."""

from __future__ import annotations

import pytest

from kubetrail.emit.legacy import event_string, go_quote, rfc3339_nano
from kubetrail.model.event import Event, Level, ObjectReference, Stage, Status, UserInfo


def test_a_complete_namespaced_request() -> None:
    event = Event(
        level=Level.METADATA,
        auditID="8d5f8b4e-1f0a-4c55-9b64-0b7a4d7c2b11",
        stage=Stage.RESPONSE_COMPLETE,
        requestURI="/api/v1/namespaces/prod/pods/web-0",
        verb="get",
        user=UserInfo(username="jane", groups=["devs", "system:authenticated"]),
        sourceIPs=["10.0.0.7", "192.168.1.1"],
        userAgent="kubectl/v1.33.0 (linux/amd64) kubernetes/abc",
        objectRef=ObjectReference(resource="pods", namespace="prod", name="web-0", apiVersion="v1"),
        responseStatus=Status(metadata={}, code=200),
        requestReceivedTimestamp="2026-03-19T10:30:00.050000Z",
        stageTimestamp="2026-03-19T10:30:00.061000Z",
    )
    assert event_string(event) == (
        '2026-03-19T10:30:00.05Z AUDIT: id="8d5f8b4e-1f0a-4c55-9b64-0b7a4d7c2b11" stage="ResponseComplete" '
        'ip="10.0.0.7" method="get" user="jane" groups="\\"devs\\",\\"system:authenticated\\"" as="<self>" '
        'asgroups="<lookup>" user-agent="kubectl/v1.33.0 (linux/amd64) kubernetes/abc" namespace="prod" '
        'uri="/api/v1/namespaces/prod/pods/web-0" response="200"'
    )


def test_placeholders_for_missing_user_namespace_ip_and_response() -> None:
    event = Event(
        level=Level.METADATA,
        auditID="id-1",
        stage=Stage.REQUEST_RECEIVED,
        requestURI="/api/v1/nodes",
        verb="list",
        user=UserInfo(username="", groups=["system:unauthenticated"]),
        objectRef=ObjectReference(resource="nodes", apiVersion="v1"),
        requestReceivedTimestamp="2026-03-19T10:30:00.000000Z",
    )
    assert event_string(event) == (
        '2026-03-19T10:30:00Z AUDIT: id="id-1" stage="RequestReceived" ip="<unknown>" method="list" '
        'user="<none>" groups="<none>" as="<self>" asgroups="<lookup>" user-agent="" namespace="<none>" '
        'uri="/api/v1/nodes" response="<deferred>"'
    )


def test_impersonation_and_non_resource_requests() -> None:
    event = Event(
        level=Level.METADATA,
        auditID="id-2",
        stage=Stage.RESPONSE_COMPLETE,
        requestURI="/healthz",
        verb="get",
        user=UserInfo(username="admin"),
        impersonatedUser=UserInfo(username="system:serviceaccount:ci:deployer", groups=["system:serviceaccounts"]),
        sourceIPs=["::1"],
        responseStatus=Status(metadata={}, code=403),
        requestReceivedTimestamp="2026-03-19T10:30:00.123456Z",
    )
    line = event_string(event)
    assert line.startswith("2026-03-19T10:30:00.123456Z AUDIT: ")
    assert 'user="admin" groups="<none>" as="system:serviceaccount:ci:deployer"' in line
    assert 'asgroups="\\"system:serviceaccounts\\""' in line
    assert 'namespace="<none>" uri="/healthz" response="403"' in line


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\tnew\nline\r", '"tab\\tnew\\nline\\r"'),
        ("bell\a\b\f\v", '"bell\\a\\b\\f\\v"'),
        ("nul\x00del\x7f", '"nul\\x00del\\x7f"'),
        ("café ☸ 🚀", '"café ☸ 🚀"'),
        ("zero\u200bwidth", '"zero\\u200bwidth"'),
        ("nbsp\u00a0", '"nbsp\\u00a0"'),
        ("tag\U000e0001", '"tag\\U000e0001"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("microtime", "nano"),
    [
        ("2026-03-19T10:30:00.100000Z", "2026-03-19T10:30:00.1Z"),
        ("2026-03-19T10:30:00.000001Z", "2026-03-19T10:30:00.000001Z"),
        ("2026-03-19T12:30:00.5+02:00", "2026-03-19T10:30:00.5Z"),
        ("", "0001-01-01T00:00:00Z"),
    ],
)
def test_rfc3339_nano_trims_trailing_zeros(microtime: str, nano: str) -> None:
    assert rfc3339_nano(microtime) == nano
