"""Rule outputs: `%field` substitution, `<NA>`, lists, and Falco's text and JSON alert formats."""

from __future__ import annotations

import json

import pytest

from kubetrail.detect import Engine, Priority, TimeFormat
from kubetrail.detect.fields import accessor_for
from kubetrail.detect.output import OutputFormatError, compile_output, render_value
from tests.detect.helpers import context, make_event, rule, ruleset


def render(template: str, **changes: object) -> tuple[str, dict[str, object]]:
    compiled = compile_output(template, accessor_for)
    ctx = context(**changes)
    message, fields = compiled.render(ctx)
    assert (message, fields) == compiled.render_slowly(context(**changes))
    return message, dict(fields)


def test_fields_are_substituted_where_they_stand() -> None:
    message, fields = render("user=%ka.user.name target=%ka.target.name/%ka.target.resource verb=%ka.verb")
    assert message == "user=jane target=web/pods verb=create"
    assert fields == {
        "ka.user.name": "jane",
        "ka.target.name": "web",
        "ka.target.resource": "pods",
        "ka.verb": "create",
    }


def test_missing_values_print_na_and_lists_print_in_parentheses() -> None:
    message, fields = render("imp=%ka.impuser.name groups=%ka.user.groups ips=%ka.sourceips")
    assert message == "imp=<NA> groups=(dev,system:authenticated) ips=(10.0.0.7)"
    assert fields["ka.impuser.name"] is None
    assert fields["ka.user.groups"] == ["dev", "system:authenticated"]


def test_fields_with_arguments_and_the_longest_field_name() -> None:
    pod = {"spec": {"containers": [{"name": "a", "image": "nginx:1"}]}}
    message, fields = render(
        "cmd=%ka.uri.param[command] repo=%ka.req.pod.containers.image.repository img=%ka.req.pod.containers.image)",
        requestURI="/api/v1/namespaces/d/pods/p/exec?command=sh",
        requestObject=pod,
    )
    assert message == "cmd=sh repo=(nginx) img=(nginx:1))"
    assert set(fields) == {
        "ka.uri.param[command]",
        "ka.req.pod.containers.image.repository",
        "ka.req.pod.containers.image",
    }


def test_a_repeated_field_is_read_once_and_reported_once() -> None:
    message, fields = render("%ka.verb %ka.verb")
    assert message == "create create"
    assert list(fields) == ["ka.verb"]


def test_unknown_fields_are_refused_with_their_offset() -> None:
    with pytest.raises(OutputFormatError) as caught:
        compile_output("ok %ka.verb then %proc.name", accessor_for)
    assert caught.value.offset == 17
    assert "%proc.name" in caught.value.message


def test_render_value() -> None:
    assert render_value(None) == "<NA>"
    assert render_value([]) == "()"
    assert render_value(["a", "b"]) == "(a,b)"
    assert render_value("x") == "x"


def test_falco_text_line_has_utc_time_and_the_priority_name() -> None:
    loaded = ruleset(rule("ka.verb = create", output="made %ka.target.name", priority="INFO"))
    alert = Engine(loaded).evaluate(make_event())[0]
    assert alert.priority is Priority.INFORMATIONAL
    assert alert.output == "2024-05-01T10:00:00.250000000+0000: Informational made web"
    assert alert.time == "2024-05-01T10:00:00.250000000Z"
    clock = Engine(loaded, time_format=TimeFormat.TIME).evaluate(make_event())[0]
    assert clock.output == "10:00:00.250000000+0000: Informational made web"
    assert json.loads(clock.to_falco_json())["output_fields"]["evt.time"] == 1714557600250000000


def test_falco_json_alert() -> None:
    text = rule("ka.verb = create", output="made %ka.target.name by %ka.impuser.name").replace(
        "source: k8s_audit", "source: k8s_audit\n  tags: [zeta, alpha, k8s]"
    )
    engine = Engine(ruleset(text), hostname="node-1")
    alert = engine.evaluate(make_event())[0]
    document = json.loads(alert.to_falco_json())
    assert list(document) == sorted(document)
    assert document == {
        "auditID": "0b1c2d3e-0000-4000-8000-000000000001",
        "cluster": None,
        "hostname": "node-1",
        "output": "2024-05-01T10:00:00.250000000+0000: Warning made web by <NA>",
        "output_fields": {"evt.time.iso8601": 1714557600250000000, "ka.impuser.name": None, "ka.target.name": "web"},
        "outcome": "succeeded",
        "priority": "Warning",
        "rule": "r",
        "source": "k8s_audit",
        "tags": ["alpha", "k8s", "zeta"],
        "time": "2024-05-01T10:00:00.250000000Z",
    }


def test_the_cluster_names_the_alert() -> None:
    from kubetrail.detect.context import EventContext

    engine = Engine(ruleset(rule("ka.cluster.name = prod", output="%ka.cluster.name")))
    assert engine.detect(EventContext(make_event(), "staging")) == []
    alert = engine.detect(EventContext(make_event(), "prod"))[0]
    assert alert.cluster == "prod"
    assert json.loads(alert.to_falco_json())["cluster"] == "prod"
    assert alert.message == "prod"


def test_falco_json_alert_carries_the_rules_attack_ids_only_when_it_has_some() -> None:
    text = rule("ka.verb = create", output="made %ka.target.name").replace(
        "source: k8s_audit", "source: k8s_audit\n  mitre: [T1609, T1611]\n  threat_matrix: [MS-TA9010]"
    )
    document = json.loads(Engine(ruleset(text)).evaluate(make_event())[0].to_falco_json())
    assert list(document) == sorted(document)
    assert document["mitre"] == ["T1609", "T1611"]
    assert document["threat_matrix"] == ["MS-TA9010"]
    assert document["tags"] == []
    assert document["output"].endswith("Warning made web")
    only_mitre = rule("ka.verb = create").replace("source: k8s_audit", "source: k8s_audit\n  mitre: [T1609]")
    document = json.loads(Engine(ruleset(only_mitre)).evaluate(make_event())[0].to_falco_json())
    assert document["mitre"] == ["T1609"]
    assert "threat_matrix" not in document
    plain = json.loads(Engine(ruleset(rule("ka.verb = create"))).evaluate(make_event())[0].to_falco_json())
    assert "mitre" not in plain and "threat_matrix" not in plain
