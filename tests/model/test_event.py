"""The typed model: levels and stages as the audit API defines them, event helpers, policy types."""

from __future__ import annotations

import msgspec
import pytest

from kubetrail.model import (
    API_VERSION_V1,
    Event,
    EventList,
    GroupResources,
    Level,
    ObjectReference,
    Policy,
    PolicyRule,
    Stage,
    Status,
    UserInfo,
)


def test_levels_are_the_audit_api_values_in_order() -> None:
    assert [level.value for level in Level] == ["None", "Metadata", "Request", "RequestResponse"]
    assert [level.rank for level in Level] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("level", "other", "expected"),
    [
        (Level.REQUEST_RESPONSE, Level.REQUEST, True),
        (Level.REQUEST, Level.REQUEST, True),
        (Level.METADATA, Level.REQUEST, False),
        (Level.NONE, Level.METADATA, False),
        (Level.METADATA, Level.NONE, True),
    ],
)
def test_level_at_least(level: Level, other: Level, expected: bool) -> None:
    assert level.at_least(other) is expected


def test_stages_are_the_audit_api_values() -> None:
    assert {stage.value for stage in Stage} == {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}


def make_event(**fields: object) -> Event:
    base: dict[str, object] = {
        "level": Level.METADATA,
        "auditID": "a1",
        "stage": Stage.RESPONSE_COMPLETE,
        "requestURI": "/api/v1/namespaces/default/pods/web?watch=true&resourceVersion=1",
        "verb": "watch",
        "user": UserInfo(username="jane"),
    }
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


def test_constructed_event_defaults_to_v1() -> None:
    event = make_event()
    assert event.apiVersion == API_VERSION_V1
    assert event.sourceIPs == [] and event.annotations == {}
    assert event.objectRef is None and event.impersonatedUser is None


def test_path_strips_the_query() -> None:
    assert make_event().path == "/api/v1/namespaces/default/pods/web"
    assert make_event(requestURI="/healthz").path == "/healthz"
    assert make_event(requestURI="/version?").path == "/version"


def test_resource_requests_have_an_object_reference() -> None:
    assert make_event(objectRef=ObjectReference(resource="pods", namespace="default")).is_resource_request
    assert not make_event().is_resource_request


def test_empty_optional_fields_are_not_encoded() -> None:
    """The apiserver's fields are `omitempty`: an event with only required fields stays small."""
    encoded = msgspec.json.decode(msgspec.json.encode(make_event()))
    assert sorted(encoded) == sorted(["kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user"])
    assert encoded["user"] == {"username": "jane"}


def test_an_empty_body_made_anywhere_is_omitted() -> None:
    """msgspec omits only the default object itself; any other empty Raw would encode as invalid JSON."""
    import msgspec.structs

    from kubetrail.model import NO_BODY, encode_event

    built = make_event(requestObject=msgspec.Raw(b""), responseObject=msgspec.Raw())
    replaced = msgspec.structs.replace(make_event(requestObject=msgspec.Raw(b"{}")), requestObject=msgspec.Raw())
    status = make_event(responseStatus=Status(details=msgspec.Raw(b""), code=200))
    for event in (built, replaced, status):
        encoded = msgspec.json.decode(encode_event(event))
        assert "requestObject" not in encoded and "responseObject" not in encoded
    assert built.requestObject is NO_BODY and replaced.requestObject is NO_BODY
    assert msgspec.json.decode(encode_event(status))["responseStatus"] == {"code": 200}


def test_status_metadata_is_encoded_only_when_set() -> None:
    assert msgspec.json.encode(Status(code=200)) == b'{"code":200}'
    assert msgspec.json.encode(Status(metadata={}, code=200)) == b'{"metadata":{},"code":200}'


def test_event_list_defaults() -> None:
    batch = EventList(items=[make_event()])
    assert batch.apiVersion == API_VERSION_V1
    assert msgspec.json.decode(msgspec.json.encode(batch))["kind"] == "EventList"


def test_policy_types_default_like_the_api() -> None:
    rule = PolicyRule(level="Metadata")
    assert rule.omitManagedFields is None
    assert rule.resources == [] and rule.nonResourceURLs == []
    policy = Policy(rules=[rule])
    assert policy.kind == "Policy" and policy.apiVersion == API_VERSION_V1
    assert policy.omitManagedFields is False
    assert GroupResources().group == ""
    encoded = msgspec.json.decode(msgspec.json.encode(policy))
    assert encoded["rules"] == [{"level": "Metadata"}]
