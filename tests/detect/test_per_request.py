"""Detection per request: the same alerts whichever stages a policy keeps, and on every cloud's shape.

An exec, attach or portforward session is announced at ResponseStarted with 101 (Switching Protocols); the
session rules of the built-in set and of Falco's own rules file key on that stage. A policy that omits
ResponseStarted (and GKE, which logs each request once) leaves only the ResponseComplete event, also 101.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.detect import Alert, EventContext, Priority
from kubetrail.detect.requests import OncePerRequest
from kubetrail.model import decode_event
from tests.intake.shapes import aks_record, data_message, log_entry

SESSION = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Request",
    "auditID": "6f1b4c1e-0000-4000-8000-000000000001",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/shop/pods/web-0/exec?command=sh&container=web&stdin=true&tty=true",
    "verb": "create",
    "user": {"username": "mallory@example.com", "groups": ["system:authenticated"]},
    "sourceIPs": ["203.0.113.7"],
    "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
    "objectRef": {"resource": "pods", "namespace": "shop", "name": "web-0", "apiVersion": "v1", "subresource": "exec"},
    "responseStatus": {"metadata": {}, "code": 101},
    "requestReceivedTimestamp": "2026-03-19T10:00:00.000001Z",
    "stageTimestamp": "2026-03-19T10:00:00.020000Z",
    "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
}
SESSION_RULES = {
    "exec": ("Exec Or Attach Into Pod", "Attach/Exec Pod"),
    "attach": ("Exec Or Attach Into Pod", "Attach/Exec Pod"),
    "portforward": ("Port Forward To Pod", "port-forward"),
}


def session(subresource: str, number: int, stage: str, code: int = 101) -> dict[str, Any]:
    event = copy.deepcopy(SESSION)
    event["auditID"] = f"6f1b4c1e-0000-4000-8000-{number:012d}"
    event["stage"] = stage
    event["objectRef"]["subresource"] = subresource
    event["requestURI"] = event["requestURI"].replace("/exec?", f"/{subresource}?")
    event["responseStatus"]["code"] = code
    if stage == "ResponseComplete":
        event["stageTimestamp"] = "2026-03-19T10:05:00.000000Z"
    if code == 403:
        event["annotations"]["authorization.k8s.io/decision"] = "forbid"
    return event


def detect(path: Path, *rules: str) -> list[dict[str, Any]]:
    args = ["detect", str(path), "-o", "json"]
    for spec in rules:
        args += ["--rules", spec]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    assert re.search(r"^\d+ events, 0 refused", result.stderr, re.MULTILINE), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def fired(alerts: list[dict[str, Any]], rule: str) -> list[str]:
    return sorted(alert["auditID"] for alert in alerts if alert["rule"] == rule)


@pytest.fixture
def falco_rules(corpus: Path) -> str:
    return str(corpus / "falco" / "k8s_audit_rules.yaml")


STAGE_SETS = {
    "started-only": ["ResponseStarted"],
    "complete-only": ["ResponseComplete"],
    "started-and-complete": ["ResponseStarted", "ResponseComplete"],
    "every-stage": ["RequestReceived", "ResponseStarted", "ResponseComplete"],
}


@pytest.mark.parametrize("stages", STAGE_SETS.values(), ids=STAGE_SETS.keys())
def test_a_session_alerts_once_whichever_stages_were_recorded(
    tmp_path: Path, falco_rules: str, stages: list[str]
) -> None:
    events = [
        session(subresource, number, stage, code=101 if stage != "RequestReceived" else 0)
        for number, subresource in enumerate(SESSION_RULES)
        for stage in stages
    ]
    for event in events:
        if event["stage"] == "RequestReceived":
            del event["responseStatus"]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(json.dumps(event) for event in events) + "\n")
    builtin, falco = detect(path, "builtin"), detect(path, falco_rules)
    for number, (subresource, (ours, theirs)) in enumerate(SESSION_RULES.items()):
        audit_id = session(subresource, number, "ResponseStarted")["auditID"]
        assert fired(builtin, ours).count(audit_id) == 1, (subresource, stages)
        assert fired(falco, theirs).count(audit_id) == 1, (subresource, stages)


def test_a_refused_session_is_not_a_session(tmp_path: Path, falco_rules: str) -> None:
    path = tmp_path / "audit.log"
    path.write_text(json.dumps(session("exec", 9, "ResponseComplete", code=403)) + "\n")
    assert fired(detect(path, "builtin"), "Exec Or Attach Into Pod") == []
    assert fired(detect(path, falco_rules), "Attach/Exec Pod") == []


def _gke_entry(subresource: str, number: int, *, denied: bool = False) -> dict[str, Any]:
    event = session(subresource, number, "ResponseComplete", code=403 if denied else 101)
    event["responseStatus"]["code"] = 403 if denied else 200  # GKE records no 101; status.code says granted
    return log_entry(event)


def test_gke_sessions_raise_the_session_rules(tmp_path: Path, falco_rules: str) -> None:
    entries = [_gke_entry(subresource, number) for number, subresource in enumerate(SESSION_RULES)]
    entries.append(_gke_entry("exec", 7, denied=True))
    path = tmp_path / "gke.json"
    path.write_text(json.dumps(entries))
    builtin, falco = detect(path, "builtin"), detect(path, falco_rules)
    for number, (subresource, (ours, theirs)) in enumerate(SESSION_RULES.items()):
        audit_id = entries[number]["insertId"]
        assert fired(builtin, ours).count(audit_id) == 1, subresource
        assert fired(falco, theirs).count(audit_id) == 1, subresource
    denied = entries[-1]["insertId"]
    assert denied not in fired(builtin, "Exec Or Attach Into Pod") + fired(falco, "Attach/Exec Pod")


@pytest.mark.parametrize("cloud", ["eks", "aks"])
def test_managed_cluster_sessions_recorded_at_completion_raise_the_session_rules(
    tmp_path: Path, falco_rules: str, cloud: str
) -> None:
    """EKS and AKS keep the apiserver's events; a policy without ResponseStarted leaves only the completion."""
    events = [session(subresource, number, "ResponseComplete") for number, subresource in enumerate(SESSION_RULES)]
    path = tmp_path / f"{cloud}.json"
    if cloud == "eks":
        path.write_text(json.dumps(data_message(events)))
    else:
        path.write_text(json.dumps({"records": [aks_record(event) for event in events]}))
    builtin, falco = detect(path, "builtin"), detect(path, falco_rules)
    for event, (ours, theirs) in zip(events, SESSION_RULES.values(), strict=True):
        assert fired(builtin, ours).count(event["auditID"]) == 1
        assert fired(falco, theirs).count(event["auditID"]) == 1


class _Always:
    def detect(self, ctx: EventContext) -> list[Alert]:
        return [
            Alert(
                rule="always",
                priority=Priority.NOTICE,
                source="k8s_audit",
                time_ns=1,
                message="m",
                output_fields={},
                tags=(),
                audit_id=ctx.event.auditID,
                cluster=ctx.cluster,
            )
        ]


def test_forgotten_alerts_are_raised_again() -> None:
    """A worker that could not deliver a batch's alerts sees the batch again and must raise them again."""
    detector = OncePerRequest(_Always())
    ctx = EventContext(decode_event(json.dumps(SESSION).encode()), "prod", None)
    first = detector.detect(ctx)
    assert [alert.rule for alert in first] == ["always"]
    assert detector.detect(ctx) == []
    detector.forget(first)
    assert [alert.rule for alert in detector.detect(ctx)] == ["always"]
    other = EventContext(ctx.event, "edge", None)
    assert [alert.rule for alert in detector.detect(other)] == ["always"]  # another cluster's request
