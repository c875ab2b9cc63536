"""What each audit level keeps of an event, as the Kubernetes auditing docs define the levels."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from kubetrail.model.event import Event, Level, ObjectReference, Stage, UserInfo
from kubetrail.policy.evaluate import AuditDecision
from kubetrail.policy.record import record, strip_managed_fields

MANAGED = [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1"}]


def _pod(name: str) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "managedFields": MANAGED}, "spec": {}}


def _raw(document: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(document).encode())


def _event(stage: Stage = Stage.RESPONSE_COMPLETE, *, resource: bool = True) -> Event:
    return Event(
        level=Level.REQUEST_RESPONSE,
        auditID="a1",
        stage=stage,
        requestURI="/api/v1/namespaces/prod/pods" if resource else "/healthz",
        verb="create" if resource else "get",
        user=UserInfo(username="jane"),
        objectRef=ObjectReference(resource="pods", namespace="prod", name="web", apiVersion="v1") if resource else None,
        requestObject=_raw(_pod("web")) if resource else msgspec.Raw(),
        responseObject=_raw(_pod("web")) if resource else msgspec.Raw(),
    )


def _decision(level: Level, omit: tuple[Stage, ...] = (), managed: bool = False) -> AuditDecision:
    return AuditDecision(level=level, omit_stages=omit, omit_managed_fields=managed, rule_index=0)


def _body(raw: msgspec.Raw) -> Any:
    return json.loads(bytes(raw)) if raw else None


@pytest.mark.parametrize(
    ("level", "keeps_request", "keeps_response"),
    [
        (Level.METADATA, False, False),
        (Level.REQUEST, True, False),
        (Level.REQUEST_RESPONSE, True, True),
    ],
)
def test_levels_keep_bodies(level: Level, keeps_request: bool, keeps_response: bool) -> None:
    kept = record(_event(), _decision(level))
    assert kept is not None
    assert kept.level is level
    assert bool(kept.requestObject) is keeps_request
    assert bool(kept.responseObject) is keeps_response
    assert (kept.auditID, kept.verb, kept.objectRef) == ("a1", "create", _event().objectRef)  # metadata always kept


def test_request_level_keeps_the_request_body_as_sent() -> None:
    kept = record(_event(), _decision(Level.REQUEST))
    assert kept is not None
    assert _body(kept.requestObject) == _pod("web")  # managedFields stay unless asked to omit them


def test_level_none_records_nothing() -> None:
    assert record(_event(), _decision(Level.NONE)) is None


@pytest.mark.parametrize("stage", list(Stage))
def test_omitted_stage_records_nothing(stage: Stage) -> None:
    decision = _decision(Level.REQUEST_RESPONSE, omit=(stage,))
    assert record(_event(stage), decision) is None
    other = next(item for item in Stage if item is not stage)
    assert record(_event(other), decision) is not None


def test_non_resource_requests_never_carry_bodies() -> None:
    event = msgspec.structs.replace(_event(resource=False), requestObject=_raw({"a": 1}), responseObject=_raw({"b": 2}))
    kept = record(event, _decision(Level.REQUEST_RESPONSE))
    assert kept is not None
    assert not kept.requestObject
    assert not kept.responseObject


def test_omit_managed_fields_strips_them_from_kept_bodies() -> None:
    kept = record(_event(), _decision(Level.REQUEST_RESPONSE, managed=True))
    assert kept is not None
    for body in (_body(kept.requestObject), _body(kept.responseObject)):
        assert "managedFields" not in body["metadata"]
        assert body["metadata"]["name"] == "web"
        assert body["kind"] == "Pod"


def test_omit_managed_fields_strips_every_item_of_a_list() -> None:
    listing = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [_pod("a"), _pod("b")]}
    stripped = _body(strip_managed_fields(_raw(listing)))
    assert [item["metadata"] for item in stripped["items"]] == [{"name": "a"}, {"name": "b"}]


def test_bodies_without_managed_fields_are_left_as_they_are() -> None:
    body = msgspec.Raw(b'{"kind":"Status","code":200}')
    assert bytes(strip_managed_fields(body)) == bytes(body)
    assert not strip_managed_fields(msgspec.Raw())


def test_an_event_already_at_its_level_is_returned_unchanged() -> None:
    event = _event()
    assert record(event, _decision(Level.REQUEST_RESPONSE)) is event
