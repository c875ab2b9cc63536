"""Building events and rule sets for detection tests, from plain dicts and YAML text."""

from __future__ import annotations

import copy
import json
from typing import Any

from kubetrail.detect import Engine, Matching, RuleSource, load_ruleset
from kubetrail.detect.compiler import RuleSet
from kubetrail.detect.context import EventContext
from kubetrail.model import Event, decode_event

BASE_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "0b1c2d3e-0000-4000-8000-000000000001",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/default/pods",
    "verb": "create",
    "user": {"username": "jane", "groups": ["dev", "system:authenticated"]},
    "sourceIPs": ["10.0.0.7"],
    "userAgent": "kubectl/v1.29.0",
    "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 201},
    "requestReceivedTimestamp": "2024-05-01T10:00:00.000000Z",
    "stageTimestamp": "2024-05-01T10:00:00.250000Z",
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed"},
}

REMOVE = object()


def event_dict(**changes: Any) -> dict[str, Any]:
    """The base event with top-level keys replaced (or removed with REMOVE)."""
    data = copy.deepcopy(BASE_EVENT)
    for key, value in changes.items():
        if value is REMOVE:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def make_event(**changes: Any) -> Event:
    return decode_event(json.dumps(event_dict(**changes)).encode())


def context(**changes: Any) -> EventContext:
    data = event_dict(**changes)
    raw = json.dumps(data).encode()
    return EventContext(decode_event(raw), "", raw)


def ruleset(*texts: str) -> RuleSet:
    return load_ruleset([RuleSource(f"rules-{index}.yaml", text) for index, text in enumerate(texts)])


def rule(condition: str, *, name: str = "r", output: str = "out", priority: str = "WARNING") -> str:
    """One k8s_audit rule as YAML (the condition is quoted so any operator fits)."""
    return (
        f"- rule: {name}\n  desc: test\n  condition: {json.dumps(condition)}\n"
        f"  output: {json.dumps(output)}\n  priority: {priority}\n  source: k8s_audit\n"
    )


def matches(condition: str, event: Event | EventContext, *extra: str) -> bool:
    """Whether `condition` matches the event (extra YAML texts are loaded first: lists, macros)."""
    engine = Engine(ruleset(*extra, rule(condition)), matching=Matching.ALL)
    ctx = event if isinstance(event, EventContext) else EventContext(event)
    result = bool(engine.matches(ctx))
    full = engine.rules[0].predicate(ctx) if engine.rules else False
    assert result == full, "the indexed, generated predicate disagrees with the reference closures"
    return result


def fired(engine: Engine, event: Event) -> list[str]:
    return [alert.rule for alert in engine.evaluate(event)]
