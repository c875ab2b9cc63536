"""Every built-in rule's fixtures give the same alerts on native, EKS, AKS and GKE shapes, once per request.

Each fixture is a native audit log. It is also written as each managed cloud delivers it, following the clouds'
documentation (a CloudWatch Logs subscription delivery of the cluster's audit stream; Azure Monitor
diagnostic-setting records of category kube-audit; Cloud Logging entries with an AuditLog payload, one per
completed request), and as a policy that keeps only ResponseComplete would have recorded it (an exec session
then appears only when it ends, still answered 101). Each goes through kubetrail's intake and the per-request
detector every command uses; the rule under test must raise the same alerts, for the same requests, as on the
native log.

GKE records less than the apiserver: no query string, no user groups, no impersonation, no annotations but the
authorization decision, no request that is not for a resource, and a google.rpc code instead of the HTTP status
(an update or apply that created its object is told by the response body instead). Rules that need one of those
are listed in GKE_BLIND with the reason and are not run on the GKE shape (docs/cloud-mapping.md says what GKE
lacks).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubetrail.detect.context import EventContext
from kubetrail.intake.read import read_bytes
from tests.detect.builtin.helpers import FIXTURES, engine_for, slug, written_rules
from tests.intake.shapes import aks_record, data_message, log_entry

# Rules whose evidence GKE does not record, and what is missing.
GKE_BLIND = {
    "Full-Admin Identity Used": "GKE records no user groups (system:masters)",
    "Impersonation Of Privileged Identity": "GKE records no impersonated user",
    "Anonymous Scanner Probe": "GKE records only resource requests",
    "Anonymous Request Allowed": "GKE records only resource requests; the fixtures probe non-resource paths",
    "Burst Of Unauthenticated Requests From Address": "GKE records no failed authentication (401)",
    "Kubelet API Reached Through Node Proxy": "GKE records no query string or proxied path",
    "Kubelet API Refused Through Node Proxy": "GKE records no query string or proxied path",
}

SHAPES = ("native", "complete-only", "eks", "aks", "gke")
SWITCHING_PROTOCOLS = 101


def _requests(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["auditID"], []).append(event)
    return grouped


def _completed(request: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The request's ResponseComplete event. A long-running request (an exec session, a watch) recorded only as
    started gets the one the apiserver writes when it ends, with the same code."""
    for event in request:
        if event["stage"] in ("ResponseComplete", "Panic"):
            return event
    last = request[-1]
    code = last.get("responseStatus", {}).get("code")
    if last["stage"] == "ResponseStarted" and (code == SWITCHING_PROTOCOLS or (last["verb"] == "watch" and code)):
        done = copy.deepcopy(last)
        done["stage"] = "ResponseComplete"
        return done
    return None


def complete_only(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log under a policy with `omitStages: [RequestReceived, ResponseStarted]`.

    A failed authentication is written once, at ResponseStarted (401), whatever the policy: it stays.
    """
    kept = []
    for request in _requests(events).values():
        done = _completed(request)
        if done is not None:
            kept.append(done)
        else:
            kept.extend(event for event in request if event.get("responseStatus", {}).get("code") == 401)
    return kept


def _gke_entries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    entries = []
    for request in _requests(events).values():
        done = _completed(request)
        if done is not None and done.get("objectRef", {}).get("resource"):
            entries.append(log_entry(done))
    return entries


def shaped(events: list[dict[str, Any]], shape: str) -> bytes:
    if shape == "native":
        return b"".join(json.dumps(event).encode() + b"\n" for event in events)
    if shape == "complete-only":
        return b"".join(json.dumps(event).encode() + b"\n" for event in complete_only(events))
    if shape == "eks":
        return json.dumps(data_message(events)).encode()
    if shape == "aks":
        return json.dumps({"records": [aks_record(event) for event in events]}).encode()
    return json.dumps(_gke_entries(events)).encode()


def alerts(directory: Path, data: bytes, rule: str) -> Counter[str]:
    """The auditIDs the rule alerted on, with how often (once per request is the contract)."""
    engine = engine_for(directory)
    found: Counter[str] = Counter()
    for batch in read_bytes(data, source="fixture"):
        assert not batch.rejected, batch.rejected
        for event, raw in zip(batch.events, batch.raws, strict=True):
            for alert in engine.detect(EventContext(event, batch.cluster or "", raw)):
                if alert.rule == rule:
                    found[alert.audit_id] += 1
    return found


def _fixture_events(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text(encoding="utf-8"))
    return document if isinstance(document, list) else [document]


CASES = [
    pytest.param(rule.name, path, shape, id=f"{slug(rule.name)}/{path.stem}/{shape}")
    for rule in written_rules()
    for path in sorted((FIXTURES / slug(rule.name)).glob("*.json"))
    for shape in SHAPES
    if not (shape == "gke" and rule.name in GKE_BLIND)
]


@pytest.mark.parametrize(("name", "path", "shape"), CASES)
def test_the_rule_agrees_on_every_shape(name: str, path: Path, shape: str) -> None:
    events = _fixture_events(path)
    native = alerts(path.parent, shaped(events, "native"), name)
    assert all(count == 1 for count in native.values()), f"{name} fired twice for one request: {native}"
    assert bool(native) == path.name.startswith("positive"), f"{name} on {path.name}: {dict(native)}"
    if shape == "complete-only" and not complete_only(events):
        pytest.fail(f"{path}: nothing left under a ResponseComplete-only policy; add the request's completion")
    got = alerts(path.parent, shaped(events, shape), name)
    assert got == native, f"{name} on {path.name} as {shape}: {dict(got)} != native {dict(native)}"


# Creations by apply, and the rule for a change of the same object, which must stay quiet on every shape.
APPLY_CREATIONS = [
    ("daemonset-created/positive-2.json", "DaemonSet Pod Template Changed"),
    ("admission-webhook-configuration-created/positive-2.json", "Admission Webhook Configuration Changed Or Deleted"),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("fixture", "change_rule"), APPLY_CREATIONS)
def test_a_creation_by_apply_is_not_read_as_a_change(fixture: str, change_rule: str, shape: str) -> None:
    path = FIXTURES / fixture
    assert alerts(path.parent, shaped(_fixture_events(path), shape), change_rule) == Counter()
