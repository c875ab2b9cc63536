"""Requests from audit events: the acting user, the authorizer's attributes and the decision."""

from __future__ import annotations

from kubetrail.model import Event, ObjectReference, Stage, Status, UserInfo
from kubetrail.rbac import Request, observe, request_of
from kubetrail.rbac.observed import decision_of, implied_groups


def _event(verb: str = "get", code: int = 200, ref: ObjectReference | None = None, **fields: object) -> Event:
    return Event(
        level="Metadata",
        auditID=str(fields.pop("auditID", "a")),
        stage=fields.pop("stage", Stage.RESPONSE_COMPLETE),  # type: ignore[arg-type]
        requestURI=str(fields.pop("requestURI", "/api/v1/namespaces/n/pods/p")),
        verb=verb,
        user=UserInfo(username="jane"),
        objectRef=ref,
        responseStatus=Status(code=code),
        **fields,  # type: ignore[arg-type]
    )


def test_decision_prefers_the_authorizer_annotation() -> None:
    assert decision_of(_event(code=403, annotations={"authorization.k8s.io/decision": "allow"})) == "allow"
    assert decision_of(_event(code=404)) == "allow"  # not found, but authorized
    assert decision_of(_event(code=403)) == "forbid"
    assert decision_of(_event(code=401)) is None


def test_request_attributes() -> None:
    ref = ObjectReference(resource="pods", namespace="n", name="p", subresource="exec")
    assert request_of(_event("create", ref=ref)) == Request("create", "", "pods", "exec", "n", "p")
    created = ObjectReference(resource="configmaps", namespace="n", name="c")
    assert request_of(_event("create", ref=created)).name == ""  # the URL of a create names no object
    listed = ObjectReference(resource="pods", namespace="n", name="p")
    assert request_of(_event("list", ref=listed)).name == ""
    assert request_of(_event(requestURI="/healthz?verbose=1")) == Request("get", path="/healthz")


def test_stages_of_one_request_count_once() -> None:
    ref = ObjectReference(resource="pods", namespace="n", name="p")
    events = [_event(ref=ref, stage=Stage.REQUEST_RECEIVED, code=0), _event(ref=ref)]
    observed = observe(events)
    assert [(item.request.resource, item.allowed, item.denied) for item in observed.values()] == [("pods", 1, 0)]


def test_service_account_groups_are_implied() -> None:
    user = UserInfo(username="system:serviceaccount:shop:cart")
    assert implied_groups(user) == {"system:serviceaccounts", "system:serviceaccounts:shop", "system:authenticated"}
