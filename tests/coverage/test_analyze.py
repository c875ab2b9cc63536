"""Coverage: rules that need bodies or stages a policy drops are reported, with the policy rule to blame."""

from __future__ import annotations

from pathlib import Path

from kubetrail.coverage import analyze
from kubetrail.detect import RuleSource, load_ruleset, rule_sources
from kubetrail.detect.compiler import RuleSet
from kubetrail.intake import read_events
from kubetrail.model import Event
from kubetrail.policy.evaluate import CompiledPolicy, compile_policy
from kubetrail.policy.load import load_policy_bytes
from tests.detect.helpers import make_event

RULES = """
- rule: Privileged container
  desc: a pod asks for a privileged container (needs the request body)
  condition: ka.verb=create and ka.target.resource=pods and ka.req.pod.containers.privileged intersects (true)
  output: privileged pod (user=%ka.user.name pod=%ka.resp.name ns=%ka.target.namespace)
  priority: WARNING
  source: k8s_audit
- rule: Pod created
  desc: any pod creation (metadata is enough)
  condition: ka.verb=create and ka.target.resource=pods
  output: pod created (user=%ka.user.name pod=%ka.resp.name)
  priority: INFO
  source: k8s_audit
"""

POD = {
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]},
}


def _policy(text: str) -> CompiledPolicy:
    return compile_policy(load_policy_bytes(("apiVersion: audit.k8s.io/v1\nkind: Policy\n" + text).encode()).policy)


def _ruleset() -> RuleSet:
    return load_ruleset([RuleSource("rules.yaml", RULES)])


def _privileged_create() -> Event:
    return make_event(requestObject=POD, responseObject=POD)


def test_metadata_policy_blinds_the_body_rule_and_names_the_rule() -> None:
    policy = _policy("rules:\n- level: None\n  users: [system:kube-proxy]\n- level: Metadata\n")
    report = analyze(policy, _ruleset(), [_privileged_create()])
    privileged = report.by_name("Privileged container")
    assert (privileged.fired_full, privileged.fired_recorded) == (1, 0)
    assert privileged.blind
    [(cause, count)] = privileged.lost.items()
    assert cause.rule == 1 and count == 1
    assert cause.reason == "level Metadata drops requestObject and responseObject"


def test_rule_that_still_fires_reports_the_field_that_became_missing() -> None:
    policy = _policy("rules:\n- level: Metadata\n")
    created = analyze(policy, _ruleset(), [_privileged_create()]).by_name("Pod created")
    assert (created.fired_full, created.fired_recorded, created.lost_events) == (1, 1, 0)
    assert set(created.lost_fields) == {"ka.resp.name"}  # the user is metadata; the name came from the response


def test_request_level_keeps_the_request_body_and_loses_only_response_fields() -> None:
    policy = _policy("rules:\n- level: Request\n")
    report = analyze(policy, _ruleset(), [_privileged_create()])
    privileged = report.by_name("Privileged container")
    assert privileged.fired_recorded == 1 and not privileged.lost
    [(cause, _)] = privileged.lost_fields["ka.resp.name"].items()
    assert cause.reason == "level Request drops responseObject"


def test_request_response_policy_loses_nothing() -> None:
    report = analyze(_policy("rules:\n- level: RequestResponse\n"), _ruleset(), [_privileged_create()])
    assert report.degraded == [] and len(report.rules) == 2


def test_omitted_stage_and_level_none_are_named() -> None:
    omitted = _policy("omitStages: [ResponseComplete]\nrules:\n- level: RequestResponse\n")
    lost = analyze(omitted, _ruleset(), [_privileged_create()]).by_name("Pod created").lost
    assert [cause.reason for cause in lost] == ["stage ResponseComplete omitted"]
    dropped = _policy("rules:\n- level: None\n  resources: [{group: '', resources: [pods]}]\n")
    lost = analyze(dropped, _ruleset(), [_privileged_create()]).by_name("Pod created").lost
    assert [(cause.rule, cause.reason) for cause in lost] == [(0, "level None")]
    unmatched = _policy("rules:\n- level: Metadata\n  users: [nobody]\n")
    lost = analyze(unmatched, _ruleset(), [_privileged_create()]).by_name("Pod created").lost
    assert [(cause.rule, cause.reason) for cause in lost] == [(None, "no rule matches (level None)")]


def test_falco_privileged_pod_rule_is_lost_under_a_metadata_policy(corpus: Path) -> None:
    rules = load_ruleset(rule_sources([corpus / "falco" / "k8s_audit_rules.yaml"]))
    events = list(read_events(corpus / "falco" / "events" / "create_nginx_pod_privileged.json"))
    metadata = analyze(_policy("rules:\n- level: Metadata\n"), rules, events)
    assert metadata.by_name("Create Privileged Pod").blind
    full = analyze(_policy("rules:\n- level: RequestResponse\n"), rules, events)
    assert not full.by_name("Create Privileged Pod").degraded


def test_a_rule_on_a_missing_field_gains_alerts_the_full_events_do_not_raise() -> None:
    rules = load_ruleset(
        [
            RuleSource(
                "gain.yaml",
                """
- rule: Pod create without a stored object
  desc: fires when the response carries no object name
  condition: ka.verb=create and ka.target.resource=pods and not ka.resp.name exists
  output: odd pod create (user=%ka.user.name)
  priority: NOTICE
  source: k8s_audit
""",
            )
        ]
    )
    report = analyze(_policy("rules:\n- level: Metadata\n"), rules, [_privileged_create()])
    odd = report.by_name("Pod create without a stored object")
    assert (odd.fired_full, odd.fired_recorded) == (0, 1)
    assert [cause.rule for cause in odd.gained] == [0]
    assert odd.changed and not odd.degraded
    unchanged = analyze(_policy("rules:\n- level: RequestResponse\n"), rules, [_privileged_create()])
    assert unchanged.rules == ()
