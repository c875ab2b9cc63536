"""Sigma value modifiers and matching semantics, each against events that do and do not fit (Sigma specification)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.detect.sigma.helpers import matches

_POD = {
    "kind": "Pod",
    "spec": {
        "containers": [
            {"name": "a", "image": "nginx:1.25"},
            {"name": "b", "image": "evil.io/miner:latest", "securityContext": {"privileged": True}},
        ]
    },
}

# (detection block, event changes, expected)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    # plain strings: whole-value, case-insensitive
    ("    s:\n        verb: CREATE\n    condition: s", {}, True),
    ("    s:\n        verb: creat\n    condition: s", {}, False),
    ("    s:\n        verb|cased: CREATE\n    condition: s", {}, False),
    ("    s:\n        verb|cased: create\n    condition: s", {}, True),
    # wildcards
    ("    s:\n        userAgent: 'kubectl/*'\n    condition: s", {}, True),
    ("    s:\n        userAgent: 'kubectl/v1.2?.0'\n    condition: s", {}, True),
    ("    s:\n        userAgent: 'kubectl/v1.?.0'\n    condition: s", {}, False),
    (r"    s:" "\n" r"        userAgent: 'kubectl\*'" "\n    condition: s", {"userAgent": "kubectl*"}, True),
    (r"    s:" "\n" r"        userAgent: 'kubectl\*'" "\n    condition: s", {}, False),
    # contains / startswith / endswith
    ("    s:\n        requestURI|contains: NAMESPACES/default\n    condition: s", {}, True),
    ("    s:\n        requestURI|contains: /kube-system/\n    condition: s", {}, False),
    ("    s:\n        requestURI|startswith: /api/v1/\n    condition: s", {}, True),
    ("    s:\n        requestURI|startswith: /apis/\n    condition: s", {}, False),
    ("    s:\n        requestURI|endswith: /PODS\n    condition: s", {}, True),
    ("    s:\n        requestURI|endswith: /pods/x\n    condition: s", {}, False),
    # a list of values is OR; `all` makes it AND
    ("    s:\n        verb:\n            - get\n            - create\n    condition: s", {}, True),
    ("    s:\n        requestURI|contains|all:\n            - /api/\n            - /pods\n    condition: s", {}, True),
    (
        "    s:\n        requestURI|contains|all:\n            - /api/\n            - /secrets\n    condition: s",
        {},
        False,
    ),
    # regular expressions: unanchored search, case-sensitive unless |i
    ("    s:\n        userAgent|re: 'v1\\.2[0-9]\\.'\n    condition: s", {}, True),
    ("    s:\n        userAgent|re: '^KUBECTL/'\n    condition: s", {}, False),
    ("    s:\n        userAgent|re|i: '^KUBECTL/'\n    condition: s", {}, True),
    # cidr on the list of source IPs: any address in the network
    ("    s:\n        sourceIPs|cidr: 10.0.0.0/8\n    condition: s", {"sourceIPs": ["192.168.1.9", "10.4.5.6"]}, True),
    ("    s:\n        sourceIPs|cidr: 10.0.0.0/8\n    condition: s", {"sourceIPs": ["192.168.1.9", "11.0.0.1"]}, False),
    ("    s:\n        sourceIPs|cidr: 'fd00::/8'\n    condition: s", {"sourceIPs": ["fd12:3456::1"]}, True),
    ("    s:\n        sourceIPs|cidr: 10.0.0.0/8\n    condition: s", {"sourceIPs": ["not-an-ip"]}, False),
    # exists
    ("    s:\n        objectRef.subresource|exists: true\n    condition: s", {}, False),
    ("    s:\n        objectRef.subresource|exists: false\n    condition: s", {}, True),
    ("    s:\n        objectRef.namespace|exists: true\n    condition: s", {}, True),
    # numbers: equality with numbers and their spelling; comparisons
    ("    s:\n        responseStatus.code: 201\n    condition: s", {}, True),
    ("    s:\n        responseStatus.code: '201'\n    condition: s", {}, True),
    ("    s:\n        responseStatus.code: 403\n    condition: s", {}, False),
    ("    s:\n        responseStatus.code|gte: 400\n    condition: s", {"responseStatus": {"code": 403}}, True),
    ("    s:\n        responseStatus.code|gte: 400\n    condition: s", {}, False),
    ("    s:\n        responseStatus.code|lt: 300\n    condition: s", {}, True),
    ("    s:\n        responseStatus.code|gt: 201\n    condition: s", {}, False),
    # null: absent or JSON null
    ("    s:\n        objectRef.subresource: null\n    condition: s", {}, True),
    ("    s:\n        objectRef.namespace: null\n    condition: s", {}, False),
    # list-valued fields match when any element does
    ("    s:\n        user.groups: system:authenticated\n    condition: s", {}, True),
    ("    s:\n        user.groups: system:masters\n    condition: s", {}, False),
    # dotted paths into bodies fan out over arrays; booleans compare as booleans
    (
        "    s:\n        requestObject.spec.containers.image|startswith: evil.io/\n    condition: s",
        {"requestObject": _POD},
        True,
    ),
    (
        "    s:\n        requestObject.spec.containers.image|startswith: docker.io/\n    condition: s",
        {"requestObject": _POD},
        False,
    ),
    (
        "    s:\n        requestObject.spec.containers.securityContext.privileged: true\n    condition: s",
        {"requestObject": _POD},
        True,
    ),
    (
        "    s:\n        requestObject.spec.containers.securityContext.privileged: false\n    condition: s",
        {"requestObject": _POD},
        False,
    ),
    # annotation keys contain dots and slashes
    ("    s:\n        annotations.authorization.k8s.io/decision: allow\n    condition: s", {}, True),
    ("    s:\n        annotations.authorization.k8s.io/decision: forbid\n    condition: s", {}, False),
    # a field no event has never matches a value
    ("    s:\n        nosuch.field: '*'\n    condition: s", {}, False),
    ("    s:\n        userAgent: '*'\n    condition: s", {}, True),
    # fieldref: one field equal to another
    (
        "    s:\n        user.username|fieldref: objectRef.name\n    condition: s",
        {"objectRef": {"resource": "users", "name": "jane"}},
        True,
    ),
    ("    s:\n        user.username|fieldref: objectRef.name\n    condition: s", {}, False),
    (
        "    s:\n        user.username|fieldref|startswith: objectRef.name\n    condition: s",
        {"objectRef": {"resource": "users", "name": "ja"}},
        True,
    ),
    (
        "    s:\n        user.username|fieldref|endswith: objectRef.name\n    condition: s",
        {"objectRef": {"resource": "users", "name": "ja"}},
        False,
    ),
    # neq negates the item
    ("    s:\n        responseStatus.code|neq: 403\n    condition: s", {}, True),
    ("    s:\n        responseStatus.code|neq: 201\n    condition: s", {}, False),
    # keywords search every string of the event, as substrings
    ("    keywords:\n        - trufflehog\n    condition: keywords", {"userAgent": "TruffleHog/3.0"}, True),
    ("    keywords:\n        - trufflehog\n    condition: keywords", {}, False),
]


@pytest.mark.parametrize(("detection", "event", "expected"), CASES)
def test_modifier_semantics(detection: str, event: dict[str, Any], expected: bool) -> None:
    assert matches(detection, **event) is expected


def test_base64_compares_the_encoded_value() -> None:
    encoded = base64.b64encode(b"hunter2").decode()
    detection = "    s:\n        requestObject.data.password|base64: hunter2\n    condition: s"
    configmap = {"kind": "Secret", "data": {"password": encoded}}
    assert matches(detection, requestObject=configmap) is True
    assert matches(detection, requestObject={"kind": "Secret", "data": {"password": "hunter2"}}) is False


def test_windash_accepts_the_slash_form_of_a_dash_option() -> None:
    detection = "    s:\n        userAgent|windash|contains: ' -insecure'\n    condition: s"
    assert matches(detection, userAgent="tool /insecure") is True
    assert matches(detection, userAgent="tool -insecure") is True
    assert matches(detection, userAgent="tool insecure") is False


def test_base64offset_finds_the_value_at_any_offset_of_an_encoded_text() -> None:
    detection = "    s:\n        requestObject.data.script|base64offset|contains: curl\n    condition: s"
    for prefix in (b"", b"x", b"xy"):
        encoded = base64.b64encode(prefix + b"run curl evil.sh").decode()
        assert matches(detection, requestObject={"data": {"script": encoded}}) is True
    assert matches(detection, requestObject={"data": {"script": base64.b64encode(b"run wget").decode()}}) is False
