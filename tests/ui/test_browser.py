"""Click through the UI in a real browser (Debian's chromium, headless, driven by Playwright) against `serve`:
search → event detail → the user's timeline, and the alerts page. Screenshots go to the test's tmp directory and
to test-artifacts/ui/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.serve.helpers import PROJECT
from tests.ui.conftest import UIServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT / "test-artifacts" / "ui"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
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
def page(browser: object, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.shots = []  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for shot in opened.shots:  # type: ignore[attr-defined]
            shutil.copy(shot, ARTIFACTS / f"{request.node.name}-{shot.name}")
        context.close()
    assert not errors, errors


def screenshot(page: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    page.shots.append(path)  # type: ignore[attr-defined]


def test_search_event_detail_and_identity_timeline(ui_server: UIServer, page: object, tmp_path: Path) -> None:
    user = "bob@example.com"
    theirs = sorted(
        (event["requestReceivedTimestamp"], event["auditID"])
        for event in ui_server.events
        if event["user"].get("username") == user
    )
    p = page
    p.goto(f"{ui_server.url}/ui/")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "overview")
    p.click("#nav-search")  # type: ignore[attr-defined]
    p.fill("#filter", f"user={user} verb=create")  # type: ignore[attr-defined]
    p.click("#search-button")  # type: ignore[attr-defined]
    p.wait_for_selector("table.events")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "search")
    first = p.locator("a.event-link").first  # type: ignore[attr-defined]
    first.click()
    p.wait_for_selector("#audit-id")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "event")
    audit_id = p.inner_text("#audit-id")  # type: ignore[attr-defined]
    shown = [json.loads(text) for text in p.locator("pre.json").all_inner_texts()]  # type: ignore[attr-defined]
    assert shown and all(event["auditID"] == audit_id for event in shown)
    assert all(event["user"]["username"] == user and event["verb"] == "create" for event in shown)
    assert audit_id in {audit for _, audit in theirs}

    p.click("#user-link")  # type: ignore[attr-defined]
    p.wait_for_selector("#identity-name")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "identity")
    assert p.inner_text("#identity-name") == user  # type: ignore[attr-defined]
    times = p.locator("a.event-link").all_inner_texts()  # type: ignore[attr-defined]
    expected = [stamp[:23].replace("T", " ") for stamp, _ in theirs][:50]
    assert times == expected


def test_alerts_page_and_alert_detail(ui_server: UIServer, page: object, tmp_path: Path) -> None:
    p = page
    p.goto(f"{ui_server.url}/ui/")  # type: ignore[attr-defined]
    p.click("#nav-alerts")  # type: ignore[attr-defined]
    p.wait_for_selector("tr.alert-row")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "alerts")
    p.select_option("#priority", "Error")  # type: ignore[attr-defined]
    p.click("form.search button")  # type: ignore[attr-defined]
    p.wait_for_load_state()  # type: ignore[attr-defined]
    priorities = p.locator("tr.alert-row td:nth-child(2)").all_inner_texts()  # type: ignore[attr-defined]
    assert priorities and set(priorities) == {"Error"}
    p.locator("a.alert-link").first.click()  # type: ignore[attr-defined]
    p.wait_for_selector("#alert-rule")  # type: ignore[attr-defined]
    screenshot(p, tmp_path, "alert")
    event = json.loads(p.locator("pre.json").nth(1).inner_text())  # type: ignore[attr-defined]
    posted = {item["auditID"]: item for item in ui_server.posted}
    assert event["auditID"] in posted
    rule = p.inner_text("#alert-rule")  # type: ignore[attr-defined]
    mitre = p.locator("#alert-mitre a").all_inner_texts()  # type: ignore[attr-defined]
    assert mitre == builtin_rules()[rule].get("mitre", [])


def builtin_rules() -> dict[str, dict[str, object]]:
    """The built-in rule files as YAML says, by rule name (the oracle for the MITRE IDs an alert shows)."""
    rules: dict[str, dict[str, object]] = {}
    for path in sorted((PROJECT / "src" / "kubetrail" / "detect" / "rules").glob("*.yaml")):
        for item in yaml.safe_load(path.read_text()) or []:
            if isinstance(item, dict) and "rule" in item:
                rules[str(item["rule"])] = item
    return rules


def test_login_form_lets_a_token_holder_in(page: object, tmp_path: Path) -> None:
    from tests.serve.helpers import serving

    token = "9c1d2e4b5a69788796a5b4c3d2e1f0aa"
    tokens = tmp_path / "ui-tokens"
    tokens.write_text(f"{token},oncall\n")
    arguments = ("--store", str(tmp_path / "store"), "--listen", "127.0.0.1:0", "--ui-token-file", str(tokens))
    with serving(*arguments) as process:
        p = page
        answer = p.goto(f"{process.url}/ui/alerts")  # type: ignore[attr-defined]
        assert answer.status == 401
        p.fill("input[name=token]", "not-the-token-at-all")  # type: ignore[attr-defined]
        p.click("form.login button")  # type: ignore[attr-defined]
        assert p.locator("p.error").inner_text() == "not accepted"  # type: ignore[attr-defined]
        p.fill("input[name=token]", token)  # type: ignore[attr-defined]
        p.click("form.login button")  # type: ignore[attr-defined]
        p.wait_for_url(f"{process.url}/ui/alerts")  # type: ignore[attr-defined]
        screenshot(p, tmp_path, "after-login")
        assert p.locator("h1").inner_text() == "Alerts"  # type: ignore[attr-defined]
        p.click("#nav-search")  # type: ignore[attr-defined]
        assert p.locator("h1").inner_text() == "Search"  # type: ignore[attr-defined]
