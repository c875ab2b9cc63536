"""Every operator, with Falco's semantics for missing fields (all comparisons false) and list fields."""

from __future__ import annotations

import pytest

from kubetrail.detect import RuleCompileError
from tests.detect.helpers import REMOVE, context, make_event, matches, rule, ruleset

POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "web"},
    "spec": {
        "containers": [
            {"name": "app", "image": "nginx:1.25"},
            {
                "name": "sidecar",
                "image": "registry.example.com:5000/tools/dbg@sha256:abc",
                "securityContext": {"privileged": True},
            },
        ],
        "volumes": [{"name": "etc", "hostPath": {"path": "/etc/kubernetes"}}, {"name": "data", "emptyDir": {}}],
    },
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("ka.verb = create", True),
        ("ka.verb == create", True),
        ("ka.verb = get", False),
        ("ka.verb != get", True),
        ("ka.verb != create", False),
        ("ka.response.code >= 200", True),
        ("ka.response.code < 300", True),
        ("ka.response.code > 201", False),
        ("ka.response.code <= 201", True),
        ("ka.uri contains /namespaces/", True),
        ("ka.uri contains /NAMESPACES/", False),
        ("ka.uri icontains /NAMESPACES/", True),
        ("ka.uri startswith /api/v1", True),
        ("ka.uri startswith /apis", False),
        ("ka.uri endswith /pods", True),
        ("ka.uri glob '/api/v1/namespaces/*/pods'", True),
        ("ka.uri glob '/api/v?/namespaces/[a-d]efault/pods'", True),
        ("ka.uri glob '/api/*/secrets'", False),
        ("ka.uri iglob '/API/V1/*'", True),
        ("ka.verb regex 'cr[a-z]+te'", True),
        ("ka.verb regex 'rea'", False),
        ("ka.uri pmatch (/api/v1)", True),
        ("ka.uri pmatch (/api/v)", False),
        ("ka.uri pmatch (/apis, /api/v1/namespaces/default/pods)", True),
        ("ka.verb in (get, create)", True),
        ("ka.verb in (get, list)", False),
        ("ka.verb intersects (create)", True),
        ("ka.target.subresource exists", False),
        ("ka.target.name exists", True),
    ],
)
def test_scalar_operators(condition: str, expected: bool) -> None:
    assert matches(condition, make_event()) is expected


@pytest.mark.parametrize(
    "condition",
    [
        "ka.impuser.name = jane",
        "ka.impuser.name != jane",
        "ka.impuser.name != ''",
        "ka.impuser.name < 9",
        "ka.impuser.name > 0",
        "ka.impuser.name contains a",
        "ka.impuser.name icontains a",
        "ka.impuser.name startswith ''",
        "ka.impuser.name endswith ''",
        "ka.impuser.name glob '*'",
        "ka.impuser.name regex '.*'",
        "ka.impuser.name pmatch (/)",
        "ka.impuser.name in (jane, x)",
        "ka.impuser.name intersects (jane)",
        "ka.impuser.name exists",
        "ka.user.groups in (dev)",
        "ka.user.groups intersects (dev)",
    ],
)
def test_every_comparison_on_a_missing_field_is_false(condition: str) -> None:
    event = make_event(user={"username": "jane"})
    assert matches(condition, event) is False


def test_negating_a_comparison_on_a_missing_field_is_true() -> None:
    assert matches("not ka.impuser.name = jane", make_event()) is True
    assert matches("not ka.impuser.name != jane", make_event()) is True


def test_list_field_in_means_every_value_is_in_the_set() -> None:
    event = make_event()
    assert matches("ka.user.groups in (dev, system:authenticated, other)", event) is True
    assert matches("ka.user.groups in (dev)", event) is False


def test_list_field_intersects_means_some_value_is_in_the_set() -> None:
    event = make_event()
    assert matches("ka.user.groups intersects (dev, other)", event) is True
    assert matches("ka.user.groups intersects (other)", event) is False


def test_list_values_from_request_objects() -> None:
    ctx = context(requestObject=POD)
    assert matches("ka.req.pod.containers.privileged intersects (true)", ctx) is True
    assert matches("ka.req.pod.containers.privileged in (true)", ctx) is True
    assert matches("ka.req.pod.volumes.hostpath intersects (/etc/kubernetes)", ctx) is True
    assert matches("ka.req.pod.containers.image.repository in (nginx, registry.example.com)", ctx) is True


def test_an_empty_list_value_is_missing() -> None:
    pod = {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}
    ctx = context(requestObject=pod)
    assert matches("ka.req.pod.containers.privileged exists", ctx) is False
    assert matches("not ka.req.pod.containers.privileged intersects (true)", ctx) is True


def test_a_list_field_refuses_scalar_operators() -> None:
    with pytest.raises(RuleCompileError) as caught:
        ruleset(rule("ka.user.groups = dev"))
    assert "list fields only support the operators 'exists', 'in' and 'intersects'" in str(caught.value)


def test_byte_operators_are_refused_on_strings() -> None:
    with pytest.raises(RuleCompileError, match="bcontains"):
        ruleset(rule("ka.uri bcontains 2f"))


def test_an_invalid_regex_is_refused_where_it_is_written() -> None:
    with pytest.raises(RuleCompileError) as caught:
        ruleset(rule("ka.verb = get or ka.uri regex '('"))
    assert "invalid regex pattern" in str(caught.value)
    assert caught.value.line == 3


def test_an_annotation_present_but_empty_is_available() -> None:
    event = make_event(annotations={"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""})
    assert matches("ka.auth.reason exists", event) is True
    assert matches("ka.auth.reason = ''", event) is True
    assert matches("ka.auth.reason exists", make_event(annotations=REMOVE)) is False
