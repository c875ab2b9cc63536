"""An investigation in a real browser (Debian's chromium, headless, driven by Playwright) against `serve` over a
generated attack: alert → the identity → one of its writes → what that write caused, and a search narrowed by
brushing its histogram. Every page's content is checked against the logs the store was filled from. Full-page
screenshots go to build/screenshots/ (and viewport-sized ones for the docs to build/screenshots/docs/)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

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


def test_alert_to_identity_to_request_to_what_it_caused(ui_server: UIServer, page: Any) -> None:
    user = "bob@example.com"
    by_id = requests_of(ui_server.events)
    theirs = sorted(
        (
            (received(stages[0]), audit_id)
            for audit_id, stages in by_id.items()
            if stages[0]["user"].get("username") == user
        )
    )
    deployment_write = next(
        audit_id
        for _, audit_id in theirs
        if by_id[audit_id][0]["verb"] in ("create", "patch")
        and by_id[audit_id][0]["objectRef"].get("resource") == "deployments"
    )
    assert [audit_id for _, audit_id in theirs].index(deployment_write) < 50, "the write is on the first timeline page"

    # the alert
    page.goto(f"{ui_server.url}/ui/")
    screenshot(page, "overview")
    assert "showing the data's own range" in page.inner_text("#range-note")
    page.click("#nav-alerts")
    page.select_option("#rule", "Binding To Cluster-Admin")
    page.click("form.search button")
    page.wait_for_selector("tr.alert-row")
    screenshot(page, "alerts")
    page.locator("tr.alert-row", has=page.locator("a.user-link", has_text=user)).locator("a.alert-link").first.click()
    page.wait_for_selector("#alert-rule")
    screenshot(page, "alert")
    assert page.inner_text("#alert-rule") == "Binding To Cluster-Admin"
    trigger_id = parse_qs(urlparse(page.url).query)["id"][0]
    trigger = by_id[trigger_id][0]
    name = ref(by_id[trigger_id], "name")
    assert trigger["user"]["username"] == user and ref(by_id[trigger_id], "resource") == "clusterrolebindings"
    moment = received(trigger)
    near = {audit_id for when, audit_id in theirs if abs(when - moment) <= timedelta(minutes=15)}
    assert set(row_ids(page, "#around")) == near
    assert page.locator("#around tr.marked").get_attribute("data-audit-id") == trigger_id
    history = {
        audit_id
        for audit_id, stages in by_id.items()
        if ref(stages, "name") == name and ref(stages, "resource") == "clusterrolebindings"
    }
    assert set(row_ids(page, "#object-history")) == history
    assert page.locator("#alert-message a.object").first.inner_text() == name

    # the identity
    page.locator("#alert-message a.user-link", has_text=user).first.click()
    page.wait_for_selector("#identity-name")
    screenshot(page, "identity")
    assert page.inner_text("#identity-name") == user
    assert page.locator("#identity-activity svg rect").count() > 0
    assert "Binding To Cluster-Admin" in page.inner_text("#identity-alerts")
    assert row_ids(page, "main > table.requests") == [audit_id for _, audit_id in theirs][:50]
    assert "user" not in page.locator("main > table.requests > thead th").all_inner_texts()

    # one of its writes
    page.locator(f'main > table.requests tr[data-audit-id="{deployment_write}"] a.request-link').click()
    page.wait_for_selector("#audit-id")
    screenshot(page, "request")
    stages = by_id[deployment_write]
    root = stages[0]
    assert page.inner_text("#audit-id") == deployment_write
    assert page.inner_text("#request-verb") == root["verb"]
    final = next(event for event in stages if event["stage"] == "ResponseComplete")
    assert page.inner_text("#request-code") == str(final["responseStatus"]["code"])
    shown = [json.loads(text) for text in page.locator("pre.json").all_text_contents()]
    assert sorted(event["stage"] for event in shown) == sorted(event["stage"] for event in stages)

    # what it caused: requests by controllers, after the write and within the horizon, one of them a ReplicaSet
    # whose recorded body names the Deployment as its owner (as the deployment controller sets it)
    assert page.get_attribute("li.cascade-node[data-depth='0']", "data-audit-id") == deployment_write
    caused = page.locator("li.cascade-node:not([data-depth='0'])").evaluate_all(
        "nodes => nodes.map(n => n.dataset.auditId)"
    )
    assert caused
    start = received(root)
    for audit_id in caused:
        event = by_id[audit_id][0]
        assert event["user"]["username"].startswith("system:"), event["user"]
        assert start - timedelta(seconds=2) <= received(event) <= start + HORIZON
    deployment = ref(stages, "name")
    replicasets = [
        audit_id
        for audit_id in caused
        if any(("Deployment", deployment) in owners(event) for event in by_id[audit_id])
        and ref(by_id[audit_id], "resource") == "replicasets"
    ]
    assert replicasets, "the ReplicaSet the deployment controller created for it"
    page.locator(f'li.cascade-node[data-audit-id="{replicasets[0]}"] > a.request-link').click()
    page.wait_for_selector("#audit-id")
    assert page.inner_text("#audit-id") == replicasets[0]
    assert page.inner_text("#user-link") == by_id[replicasets[0]][0]["user"]["username"]


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
    assert set(row_ids(page, ".results")) == set(sorted(inside)[:0]) | set(row_ids(page, ".results"))
    assert set(row_ids(page, ".results")) <= inside
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
