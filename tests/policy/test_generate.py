"""Generated policies: every preset loads, validates and lints clean; tuning drops only safe system reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.model import Event, Level
from kubetrail.policy.attributes import RequestAttributes
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.generate import generate_policy, load_generated, tune
from kubetrail.policy.lint import exit_code, lint_policy
from kubetrail.policy.presets import PRESETS
from tests.detect.helpers import make_event

KUBELET = {"username": "system:node:worker-1", "groups": ["system:nodes", "system:authenticated"]}
NODE_CONTROLLER = {
    "username": "system:serviceaccount:kube-system:node-controller",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
}
APP = {"username": "system:serviceaccount:shop:web", "groups": ["system:serviceaccounts", "system:authenticated"]}
ANONYMOUS = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
BODY = {"kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "nginx"}] * 8}}


def _event(user: dict[str, Any], verb: str, resource: str, *, group: str = "", name: str = "x") -> Event:
    ref = {"resource": resource, "namespace": "default", "name": name, "apiGroup": group, "apiVersion": "v1"}
    return make_event(user=user, verb=verb, objectRef=ref, responseObject=BODY)


def _traffic() -> list[Event]:
    events = [_event(KUBELET, "get", "pods") for _ in range(40)]
    events += [_event(NODE_CONTROLLER, "list", "nodes") for _ in range(20)]
    events += [_event(NODE_CONTROLLER, "get", "secrets") for _ in range(40)]  # sensitive: never tuned
    events += [_event(NODE_CONTROLLER, "update", "nodes") for _ in range(40)]  # a write: never tuned
    events += [_event(NODE_CONTROLLER, "list", "clusterroles", group="rbac.authorization.k8s.io") for _ in range(40)]
    events += [_event(APP, "get", "pods") for _ in range(40)]  # an application's account: never tuned
    events += [_event(ANONYMOUS, "get", "pods") for _ in range(40)]
    return events


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_loads_without_warnings_and_lints_clean(preset: str) -> None:
    loaded = load_generated(generate_policy(preset), preset)
    assert loaded.warnings == []
    assert exit_code(lint_policy(loaded)) == 0


@pytest.mark.parametrize("preset", PRESETS)
def test_generated_files_pass_validate_and_lint_commands(preset: str, tmp_path: Path) -> None:
    target = tmp_path / f"{preset}.yaml"
    result = CliRunner().invoke(cli, ["policy", "generate", "--preset", preset, "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(cli, ["policy", "validate", str(target)]).exit_code == 0
    assert CliRunner().invoke(cli, ["policy", "lint", str(target)]).exit_code == 0
    assert target.read_text().startswith("# kubetrail's")


def test_tuning_drops_only_heavy_system_reads_of_harmless_objects() -> None:
    rules = tune("recommended", _traffic(), min_share=0.0)
    tuned = {(rule.identity, rule.verb, rule.resources) for rule in rules}
    assert tuned == {
        (("userGroups", "system:nodes"), "get", (("", "pods"),)),
        (("users", NODE_CONTROLLER["username"]), "list", (("", "nodes"),)),
    }


def test_tuned_policy_drops_those_reads_and_still_records_the_rest(tmp_path: Path) -> None:
    text = generate_policy("recommended", tune("recommended", _traffic(), min_share=0.0), source="audit.log")
    loaded = load_generated(text, "recommended")
    assert exit_code(lint_policy(loaded)) == 0
    policy = compile_policy(loaded.policy)

    def level(user: dict[str, Any], verb: str, resource: str, group: str = "") -> Level:
        attrs = RequestAttributes(
            user=user["username"],
            groups=tuple(user["groups"]),
            verb=verb,
            namespace="default",
            resource=resource,
            api_group=group,
            name="x",
        )
        return policy.evaluate(attrs).level

    assert level(KUBELET, "get", "pods") is Level.NONE
    assert level(NODE_CONTROLLER, "list", "nodes") is Level.NONE
    assert level(NODE_CONTROLLER, "get", "secrets") is Level.METADATA
    assert level(NODE_CONTROLLER, "update", "nodes") is not Level.NONE
    assert level(APP, "get", "pods") is Level.METADATA
    assert level(ANONYMOUS, "get", "pods") is Level.METADATA
    assert "# tuned: system:nodes get" in text and "audit.log" in text


def test_min_share_keeps_light_callers_recorded() -> None:
    # of 260 written events, the kubelets' 40 pod reads write about 15% of the bytes, the 20 node lists about 7%
    rules = tune("recommended", _traffic(), min_share=0.10)
    assert [(rule.identity[1], rule.verb) for rule in rules] == [("system:nodes", "get")]


def test_cluster_log_option_tunes_from_a_file(tmp_path: Path) -> None:
    from kubetrail.model import encode_ndjson

    log = tmp_path / "audit.log"
    log.write_bytes(encode_ndjson(_traffic()))
    result = CliRunner().invoke(
        cli, ["policy", "generate", "--preset", "cis", "--cluster-log", str(log), "--min-share", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "# tuned: system:nodes get" in result.output
