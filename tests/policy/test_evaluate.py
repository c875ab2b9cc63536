"""First-match evaluation as kube-apiserver's policy checker does it: reference, compiled and per-event paths agree."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetrail.model.event import Event, Level, ObjectReference, Stage, UserInfo
from kubetrail.model.policy import GroupResources, Policy, PolicyRule
from kubetrail.policy.attributes import RequestAttributes, attributes_from_event
from kubetrail.policy.evaluate import AuditDecision, compile_policy, evaluate, union_stages

RR, RS, RC, PANIC = Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE, Stage.PANIC


def event_for(attrs: RequestAttributes, audit_id: str = "id") -> Event:
    """The event an apiserver writes for `attrs` (objectRef only for resource requests)."""
    ref = None
    if attrs.is_resource_request:
        ref = ObjectReference(
            resource=attrs.resource,
            subresource=attrs.subresource,
            namespace=attrs.namespace,
            name=attrs.name,
            apiGroup=attrs.api_group,
        )
    return Event(
        level=Level.METADATA,
        auditID=audit_id,
        stage=Stage.RESPONSE_COMPLETE,
        requestURI=attrs.path,
        verb=attrs.verb,
        user=UserInfo(username=attrs.user, groups=list(attrs.groups)),
        objectRef=ref,
    )


def decide_every_way(policy: Policy, attrs: RequestAttributes) -> AuditDecision:
    """The reference decision, after checking the compiled and per-event paths give the same one."""
    expected = evaluate(policy, attrs)
    compiled = compile_policy(policy)
    assert compiled.evaluate(attrs) == expected
    assert compiled.evaluate_event(event_for(attrs)) == expected
    assert compiled.evaluate_event(event_for(attrs)) == expected  # again, now from the cache
    return expected


# The requests of the apiserver checker's own tests, restated.
DEV = ("humans", "developers")
REQUESTS = {
    "namespaced": RequestAttributes(
        user="tim@k8s.io",
        groups=DEV,
        verb="get",
        namespace="default",
        resource="pods",
        name="busybox",
        path="/api/v1/namespaces/default/pods/busybox",
    ),
    "cluster": RequestAttributes(
        user="tim@k8s.io",
        groups=DEV,
        verb="get",
        api_group="rbac.authorization.k8s.io",
        resource="clusterroles",
        name="edit",
        path="/apis/rbac.authorization.k8s.io/v1/clusterroles/edit",
    ),
    "nonResource": RequestAttributes(
        user="tim@k8s.io", groups=DEV, verb="get", is_resource_request=False, path="/logs/kubelet.log"
    ),
    "subresource": RequestAttributes(
        user="tim@k8s.io",
        groups=DEV,
        verb="get",
        namespace="default",
        resource="pods",
        subresource="log",
        name="busybox",
        path="/api/v1/namespaces/default/pods/busybox/log",
    ),
    "anonymous": RequestAttributes(
        verb="get", namespace="default", resource="pods", name="busybox", path="/api/v1/namespaces/default/pods/busybox"
    ),
}

RULES = {
    "all": PolicyRule(level="Metadata"),
    "creates": PolicyRule(level="Request", verbs=["create"]),
    "tim": PolicyRule(level="Metadata", users=["tim@k8s.io"]),
    "humans": PolicyRule(level="Metadata", userGroups=["humans"]),
    "serviceaccounts": PolicyRule(level="Request", userGroups=["system:serviceaccounts"]),
    "get-pods": PolicyRule(level="RequestResponse", verbs=["get"], resources=[GroupResources(resources=["pods"])]),
    "get-pod-logs": PolicyRule(level="Request", verbs=["get"], resources=[GroupResources(resources=["pods/log"])]),
    "get-any": PolicyRule(level="Request", verbs=["get"], resources=[GroupResources(resources=["*"])]),
    "get-any-log": PolicyRule(level="Request", verbs=["get"], resources=[GroupResources(resources=["*/log"])]),
    "get-pod-subs": PolicyRule(level="Request", verbs=["get"], resources=[GroupResources(resources=["pods/*"])]),
    "get-clusterroles": PolicyRule(
        level="RequestResponse",
        verbs=["get"],
        namespaces=[""],
        resources=[GroupResources(group="rbac.authorization.k8s.io", resources=["clusterroles"])],
    ),
    "get-logs": PolicyRule(level="RequestResponse", verbs=["get"], nonResourceURLs=["/logs*"]),
    "get-metrics": PolicyRule(level="Request", verbs=["get"], nonResourceURLs=["/metrics"]),
    "edit-role": PolicyRule(
        level="Request",
        resources=[
            GroupResources(group="rbac.authorization.k8s.io", resources=["clusterroles"], resourceNames=["edit"])
        ],
    ),
    "skip-received": PolicyRule(level="Request", omitStages=["RequestReceived"]),
    "panic-only": PolicyRule(level="Request", omitStages=["RequestReceived", "ResponseStarted", "ResponseComplete"]),
}

# (request, rule names in policy order, expected level)
LEVEL_CASES = [
    ("namespaced", ["all"], "Metadata"),
    ("namespaced", ["creates"], "None"),
    ("namespaced", ["tim"], "Metadata"),
    ("namespaced", ["humans"], "Metadata"),
    ("namespaced", ["serviceaccounts"], "None"),
    ("namespaced", ["get-pods"], "RequestResponse"),
    ("namespaced", ["get-clusterroles"], "None"),
    ("namespaced", ["get-logs"], "None"),
    ("namespaced", ["get-metrics"], "None"),
    ("namespaced", ["get-metrics", "serviceaccounts", "all"], "Metadata"),
    ("namespaced", ["get-metrics", "get-pods", "all"], "RequestResponse"),
    ("namespaced", ["get-pod-logs", "get-pods"], "RequestResponse"),
    ("cluster", ["all"], "Metadata"),
    ("cluster", ["creates"], "None"),
    ("cluster", ["tim"], "Metadata"),
    ("cluster", ["humans"], "Metadata"),
    ("cluster", ["serviceaccounts"], "None"),
    ("cluster", ["get-pods"], "None"),
    ("cluster", ["get-clusterroles"], "RequestResponse"),
    ("cluster", ["edit-role", "get-clusterroles"], "Request"),
    ("cluster", ["get-logs"], "None"),
    ("cluster", ["get-metrics"], "None"),
    ("cluster", ["get-metrics", "serviceaccounts", "all"], "Metadata"),
    ("cluster", ["get-metrics", "get-clusterroles", "all"], "RequestResponse"),
    ("cluster", ["get-pod-logs", "get-pods"], "None"),
    ("nonResource", ["all"], "Metadata"),
    ("nonResource", ["creates"], "None"),
    ("nonResource", ["tim"], "Metadata"),
    ("nonResource", ["humans"], "Metadata"),
    ("nonResource", ["serviceaccounts"], "None"),
    ("nonResource", ["get-pods"], "None"),
    ("nonResource", ["get-clusterroles"], "None"),
    ("nonResource", ["get-logs"], "RequestResponse"),
    ("nonResource", ["get-metrics"], "None"),
    ("nonResource", ["get-metrics", "serviceaccounts", "all"], "Metadata"),
    ("nonResource", ["get-logs", "get-clusterroles", "all"], "RequestResponse"),
    ("nonResource", ["get-pod-logs", "get-pods"], "None"),
    ("subresource", ["get-pod-logs", "get-pods"], "Request"),
    ("subresource", ["get-any"], "Request"),
    ("subresource", ["get-any-log"], "Request"),
    ("subresource", ["get-pod-subs"], "Request"),
    ("subresource", ["get-pods"], "None"),  # "pods" alone does not cover pods/log
    ("anonymous", ["tim"], "None"),
    ("anonymous", ["tim", "all"], "Metadata"),
    ("anonymous", ["humans"], "None"),
    ("anonymous", ["humans", "all"], "Metadata"),
]


def _policy(rule_names: list[str], stages: list[str] | None = None, **extra: object) -> Policy:
    return Policy(rules=[RULES[name] for name in rule_names], omitStages=stages or [], **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("policy_stages", [[], ["RequestReceived", "ResponseStarted"]])
@pytest.mark.parametrize(("request_name", "rule_names", "level"), LEVEL_CASES)
def test_checker_levels(request_name: str, rule_names: list[str], level: str, policy_stages: list[str]) -> None:
    decision = decide_every_way(_policy(rule_names, policy_stages), REQUESTS[request_name])
    assert decision.level == Level(level)
    assert set(decision.omit_stages) == {Stage(stage) for stage in policy_stages}
    if level == "None":
        assert decision.rule_index is None
    else:
        assert decision.rule_index is not None
        assert RULES[rule_names[decision.rule_index]].level == level


@pytest.mark.parametrize(
    ("request_name", "rule_names", "policy_stages", "level", "stages"),
    [
        ("namespaced", ["skip-received", "get-pods", "all"], [], "Request", {RR}),
        ("namespaced", ["panic-only", "get-pods", "all"], [], "Request", {RR, RS, RC}),
        ("cluster", ["skip-received", "get-pods", "all"], [], "Request", {RR}),
        ("nonResource", ["panic-only", "get-pods", "all"], [], "Request", {RR, RS, RC}),
        (
            "namespaced",
            ["skip-received", "get-pods", "all"],
            ["RequestReceived", "ResponseStarted"],
            "Request",
            {RR, RS},
        ),
        ("cluster", ["panic-only", "get-pods", "all"], ["RequestReceived", "ResponseStarted"], "Request", {RR, RS, RC}),
        # the first rule matches, so later rules' stages do not apply
        (
            "nonResource",
            ["all", "skip-received", "get-pods"],
            ["RequestReceived", "ResponseStarted"],
            "Metadata",
            {RR, RS},
        ),
        ("nonResource", ["all", "panic-only"], [], "Metadata", set()),
    ],
)
def test_policy_and_rule_stages_combine(
    request_name: str, rule_names: list[str], policy_stages: list[str], level: str, stages: set[Stage]
) -> None:
    decision = decide_every_way(_policy(rule_names, policy_stages), REQUESTS[request_name])
    assert decision.level == Level(level)
    assert set(decision.omit_stages) == stages


def test_omit_stages_are_in_stage_order_without_duplicates() -> None:
    assert union_stages(["Panic", "RequestReceived"], ["RequestReceived", "ResponseStarted"]) == (RR, RS, PANIC)
    assert union_stages([], []) == ()
    assert union_stages(["RequestReceived", "RequestReceived"]) == (RR,)


def test_no_match_gives_none_with_the_policys_stages() -> None:
    policy = Policy(
        rules=[PolicyRule(level="Metadata", verbs=["delete"], omitStages=["Panic"])], omitStages=["RequestReceived"]
    )
    decision = decide_every_way(policy, REQUESTS["namespaced"])
    assert decision == AuditDecision(level=Level.NONE, omit_stages=(RR,), omit_managed_fields=False, rule_index=None)
    assert not decision.records(Stage.RESPONSE_COMPLETE)


@pytest.mark.parametrize(
    ("policy_value", "rule_value", "expected"),
    [
        (False, None, False),
        (True, None, True),  # the rule inherits the policy's setting
        (True, False, False),  # and overrides it when set
        (False, True, True),
    ],
)
def test_omit_managed_fields_rule_overrides_policy(policy_value: bool, rule_value: bool | None, expected: bool) -> None:
    rule = PolicyRule(level="RequestResponse", verbs=["get"], omitManagedFields=rule_value)
    policy = Policy(rules=[rule], omitManagedFields=policy_value)
    attrs = RequestAttributes(verb="get", is_resource_request=False)
    assert decide_every_way(policy, attrs).omit_managed_fields is expected


def test_no_match_keeps_the_policys_managed_fields_setting() -> None:
    policy = Policy(
        rules=[PolicyRule(level="Metadata", verbs=["list"], omitManagedFields=False)], omitManagedFields=True
    )
    assert decide_every_way(policy, REQUESTS["namespaced"]).omit_managed_fields is True


def test_first_match_wins_even_when_a_later_rule_is_more_specific() -> None:
    policy = Policy(
        rules=[
            PolicyRule(level="Metadata", resources=[GroupResources(resources=["secrets", "configmaps"])]),
            PolicyRule(
                level="RequestResponse", resources=[GroupResources(resources=["secrets"], resourceNames=["db"])]
            ),
            PolicyRule(level="None"),
        ]
    )
    attrs = RequestAttributes(user="jane", verb="get", namespace="prod", resource="secrets", name="db")
    decision = decide_every_way(policy, attrs)
    assert (decision.level, decision.rule_index) == (Level.METADATA, 0)
    assert compile_policy(policy).matching_rules(attrs) == [0, 1, 2]


def test_resource_names_mixing_named_and_unnamed_entries() -> None:
    policy = Policy(
        rules=[
            PolicyRule(
                level="RequestResponse",
                resources=[
                    GroupResources(resources=["configmaps"], resourceNames=["cluster-config"]),
                    GroupResources(group="apps", resources=["deployments"]),
                ],
            ),
            PolicyRule(level="Metadata"),
        ]
    )
    named = RequestAttributes(verb="update", namespace="kube-system", resource="configmaps", name="cluster-config")
    other = RequestAttributes(verb="update", namespace="kube-system", resource="configmaps", name="other")
    listing = RequestAttributes(verb="list", namespace="kube-system", resource="configmaps")
    deployment = RequestAttributes(verb="update", namespace="prod", api_group="apps", resource="deployments", name="x")
    assert decide_every_way(policy, named).rule_index == 0
    assert decide_every_way(policy, other).rule_index == 1
    assert decide_every_way(policy, listing).rule_index == 1  # a list names no object
    assert decide_every_way(policy, deployment).rule_index == 0
    compiled = compile_policy(policy)
    for attrs in (other, named, other, listing, named):  # the per-shape cache must not mix names up
        assert compiled.evaluate_event(event_for(attrs)) == evaluate(policy, attrs)


# Kubernetes 1.36 (kubernetes/kubernetes#135262): `group: "*"` matches every API group, core included.
STATUS_NOISE = Policy(
    rules=[
        PolicyRule(
            level="None", verbs=["update", "patch"], resources=[GroupResources(group="*", resources=["*/status"])]
        ),
        PolicyRule(
            level="RequestResponse",
            resources=[GroupResources(group="*", resources=["secrets"], resourceNames=["tls"])],
        ),
        PolicyRule(level="Request", resources=[GroupResources(group="*")], namespaces=["prod"]),
        PolicyRule(level="Metadata"),
    ]
)


@pytest.mark.parametrize(
    ("attrs", "rule"),
    [
        (RequestAttributes(verb="update", namespace="a", resource="pods", subresource="status", name="web"), 0),
        (
            RequestAttributes(
                verb="patch", namespace="a", api_group="apps", resource="deployments", subresource="status", name="web"
            ),
            0,
        ),
        (RequestAttributes(verb="update", resource="nodes", subresource="status", name="node-1"), 0),
        (RequestAttributes(verb="get", namespace="a", resource="pods", subresource="status", name="web"), 3),
        (RequestAttributes(verb="update", namespace="a", api_group="apps", resource="deployments", name="web"), 3),
        (RequestAttributes(verb="get", namespace="a", resource="secrets", name="tls"), 1),
        (RequestAttributes(verb="get", namespace="a", resource="secrets", name="db"), 3),
        (RequestAttributes(verb="get", namespace="prod", resource="configmaps", name="cfg"), 2),
        (RequestAttributes(verb="get", namespace="prod", api_group="batch", resource="jobs", name="j"), 2),
        (RequestAttributes(verb="get", namespace="prod", api_group="widgets.example.com", resource="widgets"), 2),
        (RequestAttributes(verb="get", is_resource_request=False, path="/healthz"), 3),
    ],
)
def test_all_groups_rules(attrs: RequestAttributes, rule: int) -> None:
    assert decide_every_way(STATUS_NOISE, attrs).rule_index == rule


def test_event_uses_the_authenticated_user_not_the_impersonated_one() -> None:
    policy = Policy(rules=[PolicyRule(level="RequestResponse", users=["admin"]), PolicyRule(level="Metadata")])
    event = event_for(RequestAttributes(user="admin", verb="get", namespace="a", resource="pods"))
    event.impersonatedUser = UserInfo(username="jane")
    assert compile_policy(policy).evaluate_event(event).rule_index == 0


def test_non_resource_event_path_drops_the_query() -> None:
    policy = Policy(rules=[PolicyRule(level="None", nonResourceURLs=["/readyz"]), PolicyRule(level="Metadata")])
    attrs = RequestAttributes(verb="get", is_resource_request=False, path="/readyz?verbose")
    event = event_for(attrs)
    assert attributes_from_event(event).path == "/readyz"
    assert compile_policy(policy).evaluate_event(event).rule_index == 0


# ---- property: the compiled evaluator agrees with the reference on random policies and requests ----

USERS = ["alice", "bob", "system:node:n1", ""]
GROUPS = ["dev", "system:nodes", "system:authenticated"]
VERBS = ["get", "list", "watch", "create", "delete"]
NAMESPACES = ["", "default", "kube-system"]
API_GROUPS = ["", "apps", "rbac.authorization.k8s.io"]
RESOURCES = ["pods", "secrets", "deployments", "clusterroles"]
SUBRESOURCES = ["", "exec", "status", "log"]
RESOURCE_SPECS = [*RESOURCES, "*", "pods/*", "*/status", "pods/exec", "deployments/status", "pods/log"]
NAMES = ["", "web", "db", "edit"]
PATHS = ["/healthz", "/healthz/etcd", "/metrics", "/version", "/api", "/apis/apps"]
URL_SPECS = [*PATHS, "*", "/healthz*", "/api*", "/metric*"]
STAGES = [stage.value for stage in Stage]
LEVELS = [level.value for level in Level]


def _subset(values: list[str], max_size: int = 2) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), max_size=max_size, unique=True)


group_resources = st.builds(
    GroupResources,
    group=st.sampled_from([*API_GROUPS, "*"]),  # requests never carry "*"; rules may (Kubernetes 1.36+)
    resources=_subset(RESOURCE_SPECS, 3),
    resourceNames=st.one_of(st.just([]), _subset(NAMES, 2)),
)


@st.composite
def rules(draw: st.DrawFn) -> PolicyRule:
    target = draw(st.sampled_from(["any", "resource", "url"]))
    rule = PolicyRule(
        level=draw(st.sampled_from(LEVELS)),
        users=draw(_subset(USERS)),
        userGroups=draw(_subset(GROUPS)),
        verbs=draw(_subset(VERBS, 3)),
        omitStages=draw(_subset(STAGES)),
        omitManagedFields=draw(st.sampled_from([None, True, False])),
    )
    if target == "resource":
        rule.namespaces = draw(_subset(NAMESPACES))
        rule.resources = draw(st.lists(group_resources, max_size=3))
    elif target == "url":
        rule.nonResourceURLs = draw(_subset(URL_SPECS, 3).filter(bool))
    return rule


policies = st.builds(
    Policy,
    rules=st.lists(rules(), min_size=1, max_size=8),
    omitStages=_subset(STAGES),
    omitManagedFields=st.booleans(),
)


@st.composite
def requests(draw: st.DrawFn) -> RequestAttributes:
    common = {
        "user": draw(st.sampled_from(USERS)),
        "groups": tuple(draw(_subset(GROUPS, 3))),
        "verb": draw(st.sampled_from(VERBS)),
    }
    if draw(st.booleans()):
        return RequestAttributes(is_resource_request=False, path=draw(st.sampled_from(PATHS)), **common)
    return RequestAttributes(
        namespace=draw(st.sampled_from(NAMESPACES)),
        api_group=draw(st.sampled_from(API_GROUPS)),
        resource=draw(st.sampled_from(RESOURCES)),
        subresource=draw(st.sampled_from(SUBRESOURCES)),
        name=draw(st.sampled_from(NAMES)),
        **common,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, attrs_list=st.lists(requests(), min_size=1, max_size=12))
def test_compiled_agrees_with_reference(policy: Policy, attrs_list: list[RequestAttributes]) -> None:
    compiled = compile_policy(policy)
    for attrs in attrs_list + attrs_list:  # the second pass is answered from the caches
        expected = evaluate(policy, attrs)
        assert compiled.evaluate(attrs) == expected, attrs
        assert compiled.evaluate_event(event_for(attrs)) == expected, attrs
    events = [event_for(attrs) for attrs in attrs_list]
    assert compiled.evaluate_events(events) == [evaluate(policy, attrs) for attrs in attrs_list]


def test_many_distinct_requests_stay_exact_after_the_cache_stops_growing() -> None:
    policy = Policy(
        rules=[
            PolicyRule(level="None", users=["user-7"]),
            PolicyRule(level="Request", namespaces=["ns-3"], resources=[GroupResources(resources=["pods"])]),
            PolicyRule(
                level="RequestResponse", resources=[GroupResources(resources=["pods"], resourceNames=["pod-9"])]
            ),
            PolicyRule(level="Metadata", verbs=["get"]),
        ]
    )
    attrs_list = [
        RequestAttributes(
            user=f"user-{index}",
            verb=("get", "list")[index % 2],
            namespace=f"ns-{index % 5}",
            resource="pods",
            name=f"pod-{index % 13}",
        )
        for index in range(6000)
    ]
    compiled = compile_policy(policy)
    events = [event_for(attrs) for attrs in attrs_list]
    decisions = compiled.evaluate_events(events) + compiled.evaluate_events(events)
    assert decisions == [evaluate(policy, attrs) for attrs in attrs_list] * 2
