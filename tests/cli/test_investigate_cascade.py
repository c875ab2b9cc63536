"""`kubetrail investigate cascade` on a generated log: a person's Deployment and what the controllers did."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubetrail.cli.main import cli
from kubetrail.emit.generator import GeneratorConfig, generate
from kubetrail.model import Event, encode_ndjson
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.load import load_policy_bytes
from kubetrail.policy.record import record

CONFIG = GeneratorConfig(seed=4, nodes=3, rate=4.0, duration=1500.0)


# The smallest policy Kubernetes' audit docs show: everything at Metadata level (no request or response bodies).
METADATA_ONLY = b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def _recorded(events: Iterable[Event]) -> Iterable[Event]:
    evaluate = compile_policy(load_policy_bytes(METADATA_ONLY).policy).evaluate_event
    for item in events:
        kept = record(item, evaluate(item))
        if kept is not None:
            yield kept


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cascade")
    events = list(generate(CONFIG))
    full = root / "full.log"
    full.write_bytes(encode_ndjson(events))
    metadata = root / "metadata.log"
    metadata.write_bytes(encode_ndjson(_recorded(events)))
    return {"full": full, "metadata": metadata}


def _invoke(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _audit_id(log: Path, verb: str) -> str:
    for line in log.read_text().splitlines():
        item = json.loads(line)
        ref = item.get("objectRef") or {}
        if (
            item["verb"] == verb
            and ref.get("resource") == "deployments"
            and not item["user"]["username"].startswith("system:")
        ):
            return str(item["auditID"])
    raise AssertionError(f"no person's {verb} of a Deployment in the generated log")


def _walk(node: dict[str, Any], depth: int = 0) -> Iterable[tuple[int, dict[str, Any]]]:
    yield depth, node
    for child in node["children"]:
        yield from _walk(child, depth + 1)


def test_a_generated_deployment_create_is_followed_through_the_controllers(logs: dict[str, Path]) -> None:
    code, out, _ = _invoke("investigate", "cascade", _audit_id(logs["full"], "create"), "--file", str(logs["full"]),
                           "-o", "json")  # fmt: skip
    assert code == 0
    nodes = list(_walk(json.loads(out)["root"]))
    by = {(depth, item["user"].rsplit(":", 1)[-1], item["verb"], item["resource"], item["subresource"], item["reason"])
          for depth, item in nodes}  # fmt: skip
    assert (1, "deployment-controller", "create", "replicasets", None, "ownerReference") in by
    assert (2, "replicaset-controller", "create", "pods", None, "ownerReference") in by
    assert (
        3,
        "kube-scheduler",
        "create",
        "pods",
        "binding",
        "scheduled (pods/binding)",
    ) in by
    assert any(depth == 3 and item["user"].startswith("system:node:") and item["subresource"] == "status"
               for depth, item in nodes)  # fmt: skip
    assert all(item["delay_seconds"] >= 0 for _, item in nodes)
    assert not any(item["reason"].startswith("inferred") for _, item in nodes)


def test_a_generated_deletion_leads_to_the_garbage_collector(logs: dict[str, Path]) -> None:
    code, out, _ = _invoke("investigate", "cascade", _audit_id(logs["full"], "delete"), "--file", str(logs["full"]),
                           "-o", "json")  # fmt: skip
    assert code == 0
    nodes = [item for _, item in _walk(json.loads(out)["root"])]
    collected = [item for item in nodes if item["reason"] == "garbage collection (ownerReference)"]
    assert {item["resource"] for item in collected} == {"replicasets", "pods"}
    assert all(item["user"].endswith(":generic-garbage-collector") for item in collected)


def test_under_a_metadata_policy_the_links_are_inferred_and_the_tree_says_so(logs: dict[str, Path]) -> None:
    audit_id = _audit_id(logs["metadata"], "create")
    code, out, _ = _invoke("investigate", "cascade", audit_id, "--file", str(logs["metadata"]), "-o", "json")
    assert code == 0
    nodes = [item for _, item in _walk(json.loads(out)["root"])]
    created = [item for item in nodes if item["verb"] == "create" and item["subresource"] is None][1:]
    assert created and all(item["reason"].startswith("inferred") for item in created)
    code, text, _ = _invoke("investigate", "cascade", audit_id, "--file", str(logs["metadata"]))
    assert code == 0 and "linked by names and timing only" in text


def test_an_unknown_audit_id_is_an_error(logs: dict[str, Path]) -> None:
    code, _, err = _invoke("investigate", "cascade", "no-such-id", "--file", str(logs["full"]))
    assert code == 1 and "no request with auditID 'no-such-id'" in err
