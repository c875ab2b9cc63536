"""An investigation in a real browser (Debian's chromium, headless, driven by Playwright) against `serve` over a
generated attack: alert → the identity → the Deployment it created → what that caused → the Deployment's history,
a search narrowed by brushing its histogram, and a policy simulation. Every page's content is checked against the
logs the store was filled from. Full-page screenshots go to build/screenshots/ (and viewport-sized ones for the
docs to build/screenshots/docs/)."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from kubetrail.model import decode_event
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import load_preset
from kubetrail.policy.record import record
from kubetrail.ui.policy_view import SAMPLE_EVENTS
from tests.serve.helpers import PROJECT
from tests.ui.conftest import UIServer

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = PROJECT / "build" / "screenshots"
HORIZON = timedelta(minutes=10)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" and "status of 401" not in message.text else None
        ),
    )
    try:
        yield opened
    finally:
        context.close()
    assert not errors, errors


def screenshot(page: Any, name: str) -> None:
    """A full-page screenshot for review, and a viewport-sized one (1280 by 900) for the docs."""
    (SHOTS / "docs").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "docs" / f"{name}.png"))


def assert_table_fits(page: Any, table: str) -> None:
    """The table ends within the page (no column cut off), and each cell's user name and client sit on one line:
    a long value is cut with an ellipsis (its title holds it whole), never broken mid-word."""
    width = page.evaluate("document.documentElement.clientWidth")
    right = page.locator(table).evaluate("t => t.getBoundingClientRect().right")
    assert right <= width, (right, width)
    agent_header = page.locator(f"{table} th").last
    assert agent_header.inner_text() == "user agent"
    assert agent_header.evaluate("th => th.getBoundingClientRect().right") <= width
    lines = page.locator(f"{table} td.user-cell a, {table} td.agent span").evaluate_all(
        "items => items.map(e => Math.round(e.getBoundingClientRect().height "
        "/ parseFloat(getComputedStyle(e).lineHeight)))"
    )
    assert lines and set(lines) == {1}, lines


def received(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["requestReceivedTimestamp"]).replace("Z", "+00:00"))


def requests_of(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["auditID"], []).append(event)
    return grouped


def row_ids(page: Any, scope: str) -> list[str]:
    return [
        str(value)
        for value in page.locator(f"{scope} tr.request-row").evaluate_all("rows => rows.map(r => r.dataset.auditId)")
    ]


def ref(stages: list[dict[str, Any]], key: str) -> Any:
    """An objectRef field of a request: the first stage that records it (a create's name may be missing from
    its RequestReceived stage)."""
    return next(
        ((event.get("objectRef") or {}).get(key) for event in stages if (event.get("objectRef") or {}).get(key)), None
    )


def owners(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of the ownerReferences in an event's recorded object bodies."""
    found = []
    for body in (event.get("requestObject"), event.get("responseObject")):
        for owner in ((body or {}).get("metadata") or {}).get("ownerReferences") or []:
            found.append((owner.get("kind"), owner.get("name")))
    return found


def body_of(stages: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A request's recorded `requestObject` or `responseObject` (from the stage that carries it)."""
    return next((event[key] for event in stages if isinstance(event.get(key), dict)), {})


def owned_by(stages: list[dict[str, Any]], uid: str) -> bool:
    """Whether a request's recorded bodies name `uid` among the object's ownerReferences."""
    return any(
        owner.get("uid") == uid
        for key in ("requestObject", "responseObject")
        for owner in (body_of(stages, key).get("metadata") or {}).get("ownerReferences") or []
    )


def what_a_deployment_create_caused(by_id: dict[str, list[dict[str, Any]]], root_id: str) -> dict[str, tuple[str, str]]:
    """The control plane's requests after a person created a Deployment, as Kubernetes documents them, found in
    the logs: auditID → (parent auditID, how it is linked). The deployment-controller creates a ReplicaSet whose
    ownerReferences name the Deployment's uid and writes the Deployment's status; the replicaset-controller
    creates Pods owned by the ReplicaSet and writes its status; the scheduler binds each Pod (`pods/binding`) and
    the node's kubelet reports its status (`pods/status`). All within the horizon, in the Deployment's namespace."""
    root = by_id[root_id]
    start, namespace = received(root[0]), ref(root, "namespace")
    deployment = body_of(root, "responseObject")["metadata"]

    def after(resource: str, subresource: str | None, verb: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for audit_id, stages in by_id.items():
            if (
                start <= received(stages[0]) <= start + HORIZON
                and ref(stages, "namespace") == namespace
                and ref(stages, "resource") == resource
                and ref(stages, "subresource") == subresource
                and stages[0]["verb"] == verb
            ):
                yield audit_id, stages

    def named(stages: list[dict[str, Any]]) -> str | None:
        return ref(stages, "name") or body_of(stages, "responseObject").get("metadata", {}).get("name")

    tree: dict[str, tuple[str, str]] = {}
    for audit_id, stages in after("deployments", "status", "update"):
        if named(stages) == deployment["name"] and stages[0]["user"]["username"].endswith(":deployment-controller"):
            tree[audit_id] = (root_id, "same object")
    for rs_id, rs in after("replicasets", None, "create"):
        if not owned_by(rs, deployment["uid"]):
            continue
        tree[rs_id] = (root_id, "ownerReference")
        replicaset = body_of(rs, "responseObject")["metadata"]
        for audit_id, stages in after("replicasets", "status", "update"):
            if named(stages) == replicaset["name"]:
                tree[audit_id] = (rs_id, "same object")
        for pod_id, pod in after("pods", None, "create"):
            if not owned_by(pod, replicaset["uid"]):
                continue
            tree[pod_id] = (rs_id, "ownerReference")
            for audit_id, stages in after("pods", "binding", "create"):
                if named(stages) == named(pod) and stages[0]["user"]["username"] == "system:kube-scheduler":
                    tree[audit_id] = (pod_id, "scheduled (pods/binding)")
            for audit_id, stages in after("pods", "status", "patch"):
                if named(stages) == named(pod) and stages[0]["user"]["username"].startswith("system:node:"):
                    tree[audit_id] = (pod_id, "status from the kubelet")
    return tree


def test_alert_to_identity_to_request_to_what_it_caused(ui_server: UIServer, page: Any) -> None:
    """A person minted a service-account token; the alert leads to her, her timeline to the Deployment she
    created, and its page to the rollout the control plane made of it, then to the Deployment's history."""
    user = "alice@example.com"
    by_id = requests_of(ui_server.events)
    theirs = sorted(
        (
            (received(stages[0]), audit_id)
            for audit_id, stages in by_id.items()
            if stages[0]["user"].get("username") == user
        )
    )
    deployment_create = next(
        audit_id
        for _, audit_id in theirs
        if by_id[audit_id][0]["verb"] == "create"
        and ref(by_id[audit_id], "resource") == "deployments"
        and not ref(by_id[audit_id], "subresource")
    )
    assert [audit_id for _, audit_id in theirs].index(deployment_create) < 50, "it is on the first timeline page"

    # the alert
    page.goto(f"{ui_server.url}/ui/")
    screenshot(page, "overview")
    assert "showing the data's own range" in page.inner_text("#range-note")
    page.click("#nav-alerts")
    page.wait_for_selector("tr.alert-row")
    screenshot(page, "alerts")
    page.select_option("#rule", "Service Account Token Requested")
    page.click("form.search button")
    page.wait_for_selector("tr.alert-row")
    page.locator("tr.alert-row", has=page.locator("a.user-link", has_text=user)).locator("a.alert-link").first.click()
    page.wait_for_selector("#alert-rule")
    screenshot(page, "alert")
    assert page.inner_text("#alert-rule") == "Service Account Token Requested"
    trigger_id = parse_qs(urlparse(page.url).query)["id"][0]
    trigger = by_id[trigger_id]
    account = (ref(trigger, "resource"), ref(trigger, "namespace"), ref(trigger, "name"))
    assert trigger[0]["user"]["username"] == user and ref(trigger, "subresource") == "token"
    assert account[0] == "serviceaccounts"
    moment = received(trigger[0])
    near = {audit_id for when, audit_id in theirs if abs(when - moment) <= timedelta(minutes=15)}
    assert set(row_ids(page, "#around")) == near
    assert page.locator("#around tr.marked").get_attribute("data-audit-id") == trigger_id
    history = {
        audit_id
        for audit_id, stages in by_id.items()
        if (ref(stages, "resource"), ref(stages, "namespace"), ref(stages, "name")) == account
    }
    assert set(row_ids(page, "#object-history")) == history
    assert page.locator("#alert-message a.object").first.inner_text() == account[2]

    # the identity
    page.locator("#alert-message a.user-link", has_text=user).first.click()
    page.wait_for_selector("#identity-name")
    screenshot(page, "identity")
    assert page.inner_text("#identity-name") == user
    assert page.locator("#identity-activity svg rect").count() > 0
    assert "Service Account Token Requested" in page.inner_text("#identity-alerts")
    assert row_ids(page, "main > table.requests") == [audit_id for _, audit_id in theirs][:50]
    assert "user" not in page.locator("main > table.requests > thead th").all_inner_texts()

    # the Deployment she created
    page.locator(f'main > table.requests tr[data-audit-id="{deployment_create}"] a.request-link').click()
    page.wait_for_selector("#audit-id")
    screenshot(page, "request")
    stages = by_id[deployment_create]
    assert page.inner_text("#audit-id") == deployment_create
    assert page.inner_text("#request-verb") == "create"
    final = next(event for event in stages if event["stage"] == "ResponseComplete")
    assert page.inner_text("#request-code") == str(final["responseStatus"]["code"]) == "201"
    shown = [json.loads(text) for text in page.locator("pre.json").all_text_contents()]
    assert sorted(event["stage"] for event in shown) == sorted(event["stage"] for event in stages)

    # what it caused: the rollout as the logs record it, node for node, under the right parent
    expected = what_a_deployment_create_caused(by_id, deployment_create)
    kinds = Counter((ref(by_id[audit_id], "resource"), ref(by_id[audit_id], "subresource")) for audit_id in expected)
    assert kinds[("replicasets", None)] == 1 and kinds[("pods", None)] >= 1
    assert kinds[("pods", "binding")] == kinds[("pods", "status")] == kinds[("pods", None)]
    assert page.get_attribute("li.cascade-node[data-depth='0']", "data-audit-id") == deployment_create
    nodes = page.locator("li.cascade-node:not([data-depth='0'])").evaluate_all(
        "nodes => nodes.map(n => [n.dataset.auditId, n.parentElement.closest('li.cascade-node').dataset.auditId,"
        " n.querySelector(':scope > .reason').textContent, n.querySelector(':scope > .delay').textContent])"
    )
    assert {audit_id: (parent, reason) for audit_id, parent, reason, _ in nodes} == {
        audit_id: (parent, f"({reason})") for audit_id, (parent, reason) in expected.items()
    }
    start = received(stages[0])
    for audit_id, _, _, delay in nodes:
        assert delay == f"+{(received(by_id[audit_id][0]) - start).total_seconds():.1f} s"
    assert page.inner_text("#cascade-size") == str(len(expected))

    # the ReplicaSet's own page, then the Deployment's history: every request on it, oldest first
    replicaset = next(
        audit_id
        for audit_id, (parent, _) in expected.items()
        if parent == deployment_create and ref(by_id[audit_id], "resource") == "replicasets"
    )
    page.locator(f'li.cascade-node[data-audit-id="{replicaset}"] > a.request-link').click()
    page.wait_for_selector("#audit-id")
    assert page.inner_text("#audit-id") == replicaset
    assert page.inner_text("#user-link") == "system:serviceaccount:kube-system:deployment-controller"
    page.go_back()
    assert page.inner_text("#audit-id") == deployment_create
    page.locator("#request-object a.object").click()
    page.wait_for_selector("#object-name")
    screenshot(page, "object")
    target = (ref(stages, "resource"), ref(stages, "namespace"), ref(stages, "name"))
    assert page.inner_text("#object-name") == f"{target[0]} {target[1]}/{target[2]}"
    on_it = sorted(
        (received(each[0]), audit_id)
        for audit_id, each in by_id.items()
        if (ref(each, "resource"), ref(each, "namespace"), ref(each, "name")) == target
    )
    assert row_ids(page, "main > table.requests") == [audit_id for _, audit_id in on_it][:50]
    assert "object" not in page.locator("main > table.requests > thead th").all_inner_texts()


def test_search_facets_and_a_brushed_histogram(ui_server: UIServer, page: Any) -> None:
    user = "bob@example.com"
    by_id = {
        audit_id: stages
        for audit_id, stages in requests_of(ui_server.events).items()
        if stages[0]["user"].get("username") == user
        and any(event["stage"] in ("ResponseComplete", "Panic") for event in stages)
    }
    page.goto(f"{ui_server.url}/ui/search")
    page.fill("#filter", f"user={user}")
    page.click("#search-button")
    page.wait_for_selector("#histogram svg")
    screenshot(page, "search")
    assert page.inner_text("#hit-count") == f"{len(by_id):,}"
    assert_table_fits(page, ".results table.requests")
    users = page.locator(".results td.user-cell a.user-link")
    assert users.count() > 0
    assert set(users.evaluate_all("links => links.map(a => a.title)")) == {user}
    box = page.locator("#histogram svg").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2, steps=5)
    with page.expect_navigation():
        page.mouse.up()
    text = parse_qs(urlparse(page.url).query)["q"][0]
    since = re.search(r"since=(\S+)", text)
    until = re.search(r"until=(\S+)", text)
    assert since and until and text.startswith(f"user={user} ")
    low, high = (datetime.fromisoformat(found.group(1).replace("Z", "+00:00")) for found in (since, until))
    inside = {audit_id for audit_id, stages in by_id.items() if low <= received(stages[0]) < high}
    assert 0 < len(inside) < len(by_id)
    assert page.inner_text("#hit-count") == f"{len(inside):,}"
    listed = sorted(
        (
            (received(stages[0]), audit_id)
            for audit_id, stages in requests_of(ui_server.events).items()
            if stages[0]["user"].get("username") == user and low <= received(stages[0]) < high
        ),
        reverse=True,
    )
    assert row_ids(page, ".results") == [audit_id for _, audit_id in listed][:50]  # newest first, 50 a page
    page.locator('#facets section[data-facet="verb"] a.facet-link').first.click()
    verb = html.unescape(parse_qs(urlparse(page.url).query)["q"][0].rsplit("verb=", 1)[1])
    expected = {audit_id for audit_id in inside if any(event["verb"] == verb for event in by_id[audit_id])}
    assert page.inner_text("#hit-count") == f"{len(expected):,}"


def test_alerts_page_filters_by_priority_and_shows_mitre(ui_server: UIServer, page: Any) -> None:
    page.goto(f"{ui_server.url}/ui/alerts")
    page.select_option("#priority", "Error")
    page.click("form.search button")
    page.wait_for_load_state()
    priorities = page.locator("tr.alert-row td:nth-child(2)").all_inner_texts()
    assert priorities and set(priorities) == {"Error"}
    page.locator("a.alert-link").first.click()
    page.wait_for_selector("#alert-rule")
    rule = page.inner_text("#alert-rule")
    assert page.locator("#alert-mitre a").all_inner_texts() == builtin_rules()[rule].get("mitre", [])


def test_policy_page_replays_the_stored_events_through_a_preset(ui_server: UIServer, page: Any) -> None:
    page.goto(f"{ui_server.url}/ui/")
    page.click("#nav-policy")
    page.select_option("#preset", "recommended")
    with page.expect_navigation():
        page.click("form.search button")
    screenshot(page, "policy")
    assert parse_qs(urlparse(page.url).query)["preset"] == ["recommended"]
    policy = load_preset("recommended").policy
    assert page.locator("tr.policy-rule").count() == len(policy.rules) + 1  # and the default (no rule matched)
    newest = sorted(ui_server.events, key=lambda event: str(event.get("stageTimestamp")))[-SAMPLE_EVENTS:]
    evaluate = compile_policy(policy).evaluate_event
    decoded = (decode_event(json.dumps(event).encode()) for event in newest)
    written = sum(record(event, evaluate(event)) is not None for event in decoded)
    assert page.inner_text("#written-events") == str(written)


def builtin_rules() -> dict[str, dict[str, object]]:
    """The built-in rule files as YAML says, by rule name (the oracle for the MITRE IDs an alert shows)."""
    rules: dict[str, dict[str, object]] = {}
    for path in sorted((PROJECT / "src" / "kubetrail" / "detect" / "rules").glob("*.yaml")):
        for item in yaml.safe_load(path.read_text()) or []:
            if isinstance(item, dict) and "rule" in item:
                rules[str(item["rule"])] = item
    return rules


def test_login_form_lets_a_token_holder_in(page: Any, tmp_path: Path) -> None:
    from tests.serve.helpers import serving

    token = "9c1d2e4b5a69788796a5b4c3d2e1f0aa"
    tokens = tmp_path / "ui-tokens"
    tokens.write_text(f"{token},oncall\n")
    arguments = ("--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0", "--ui-token-file", str(tokens))
    with serving(*arguments) as process:
        answer = page.goto(f"{process.url}/ui/alerts")
        assert answer.status == 401
        page.fill("input[name=token]", "not-the-token-at-all")
        page.click("form.login button")
        assert page.locator("p.error").inner_text() == "not accepted"
        page.fill("input[name=token]", token)
        page.click("form.login button")
        page.wait_for_url(f"{process.url}/ui/alerts")
        assert page.locator("h1").inner_text() == "Alerts"
        page.click("#nav-search")
        assert page.locator("h1").inner_text() == "Search"
        # the server is killed when the block ends: a request still in flight would fail in the console
        page.wait_for_load_state("networkidle")
