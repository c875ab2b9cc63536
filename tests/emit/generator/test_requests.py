"""Each generated request is self-consistent: URI, verb and objectRef agree as kube-apiserver resolves them."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from kubetrail.emit.requestinfo import resolve_request_info
from kubetrail.model import Event, Stage

METHOD_OF_VERB = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}


def _first_events(stream: list[Event]) -> list[Event]:
    seen: set[str] = set()
    firsts = []
    for event in stream:
        if event.auditID not in seen:
            seen.add(event.auditID)
            firsts.append(event)
    return firsts


def test_request_info_of_each_uri_matches_the_event(stream: list[Event]) -> None:
    checked = 0
    for event in _first_events(stream):
        ref = event.objectRef
        method = METHOD_OF_VERB[event.verb] if ref is not None else event.verb.upper()
        info = resolve_request_info(method, event.requestURI)
        assert info.verb == event.verb, event.requestURI
        assert info.is_resource_request == (ref is not None), event.requestURI
        if ref is None:
            continue
        assert (info.api_group, info.api_version) == (ref.apiGroup, ref.apiVersion), event.requestURI
        assert (info.namespace, info.resource, info.subresource) == (ref.namespace, ref.resource, ref.subresource)
        assert info.name == ref.name, event.requestURI
        checked += 1
    assert checked > 1000


def test_watch_uris_carry_watch_true_and_other_verbs_do_not(stream: list[Event]) -> None:
    for event in _first_events(stream):
        query = parse_qs(urlsplit(event.requestURI).query)
        assert (query.get("watch") == ["true"]) == (event.verb == "watch"), event.requestURI
        if event.verb == "watch":
            timeout = int(query["timeoutSeconds"][0])
            assert 300 <= timeout < 600  # client-go reflectors: 5 minutes times (1 + rand)


def test_lists_have_no_name_and_gets_name_their_object(stream: list[Event]) -> None:
    for event in _first_events(stream):
        ref = event.objectRef
        if ref is None:
            continue
        if event.verb == "list":
            assert ref.name == ""
        if event.verb in ("get", "update", "patch", "delete"):
            assert ref.name and event.path.split("/")[-1 if not ref.subresource else -2] == ref.name


def test_core_group_is_served_under_api_v1_and_named_groups_under_apis(stream: list[Event]) -> None:
    for event in _first_events(stream):
        ref = event.objectRef
        if ref is None:
            continue
        if ref.apiGroup:
            assert event.requestURI.startswith(f"/apis/{ref.apiGroup}/{ref.apiVersion}/")
        else:
            assert event.requestURI.startswith("/api/v1/")


def test_create_learns_the_object_name_after_request_received(stream: list[Event]) -> None:
    nameless = ("tokenreviews", "selfsubjectrulesreviews", "selfsubjectaccessreviews")
    creates = [
        e
        for e in stream
        if e.verb == "create" and e.objectRef and not e.objectRef.subresource and e.objectRef.resource not in nameless
    ]
    received = {e.auditID: e for e in creates if e.stage == Stage.REQUEST_RECEIVED}
    completed = [e for e in creates if e.stage == Stage.RESPONSE_COMPLETE and e.responseStatus.code == 201]
    assert completed
    for event in completed:
        assert received[event.auditID].objectRef.name == ""
        assert event.objectRef.name


def test_single_object_watches_name_the_object_from_the_field_selector(stream: list[Event]) -> None:
    named = [e for e in _first_events(stream) if e.verb == "watch" and "fieldSelector=metadata.name" in e.requestURI]
    assert named
    for event in named:
        selector = parse_qs(urlsplit(event.requestURI).query)["fieldSelector"][0]
        assert event.objectRef.name == selector.removeprefix("metadata.name=")


def test_identities_look_like_a_cluster(stream: list[Event]) -> None:
    users = {event.user.username for event in stream}
    assert {"system:kube-controller-manager", "system:kube-scheduler", "system:anonymous"} <= users
    assert {f"system:node:{name}" for name in ("control-plane-1", "worker-1", "worker-2")} <= users
    assert "system:serviceaccount:kube-system:kube-proxy" in users
    assert "system:serviceaccount:kube-system:coredns" in users
    assert "system:serviceaccount:ci:deployer" in users
    assert any(user.endswith("@example.com") for user in users)
    agents = {event.userAgent.split("/")[0] for event in stream}
    assert {"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl", "kube-probe"} <= agents
    for event in stream:
        assert event.sourceIPs


def test_allowed_requests_carry_rbac_reasons_and_denied_ones_none(stream: list[Event]) -> None:
    for event in stream:
        if event.stage != Stage.RESPONSE_COMPLETE:
            continue
        decision = event.annotations["authorization.k8s.io/decision"]
        reason = event.annotations["authorization.k8s.io/reason"]
        if decision == "forbid":
            assert event.responseStatus.code == 403 and reason == ""
        elif event.user.username.startswith("system:node:") or "system:masters" in event.user.groups:
            assert reason == ""  # the Node and system:masters authorizers allow without a reason
        elif event.responseStatus.code != 403:
            assert reason.startswith("RBAC: allowed by "), (event.user.username, event.requestURI)


def test_impersonated_requests_keep_the_real_user_and_name_the_impersonated_one(stream: list[Event]) -> None:
    impersonated = [e for e in stream if e.impersonatedUser is not None]
    assert impersonated
    for event in impersonated:
        assert event.user.username != event.impersonatedUser.username
        if event.stage == Stage.RESPONSE_COMPLETE:
            # the request is authorized as the impersonated user
            assert event.impersonatedUser.groups[0] in event.annotations["authorization.k8s.io/reason"]
