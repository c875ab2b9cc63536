"""The UI's pages over HTTP against a real `serve`: what they show is checked against the logs the store was
filled from, never against the UI's own earlier output."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx

from tests.ui.conftest import XSS_AUDIT_ID, XSS_USER, UIServer

ROW = re.compile(r'class="event-link" href="/ui/event\?id=([^"&]*)[^"]*">([^<]+)</a>')
JSON_BLOCK = re.compile(r'<pre class="json"[^>]*>(.*?)</pre>', re.S)


def shown_time(event: dict[str, Any]) -> str:
    """How the UI prints an event's time: requestReceivedTimestamp in UTC, to the millisecond."""
    return str(event["requestReceivedTimestamp"])[:23].replace("T", " ")


def rows(page: str) -> list[tuple[str, str]]:
    return [(html.unescape(audit_id), when) for audit_id, when in ROW.findall(page)]


def get(server: UIServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, timeout=30)


def test_search_pages_newest_first_without_overlap(ui_server: UIServer) -> None:
    expected = sorted((shown_time(event) for event in ui_server.events if event.get("verb") == "get"), reverse=True)
    assert len(expected) > 100
    first, second = get(ui_server, "/ui/search", q="verb=get"), get(ui_server, "/ui/search", q="verb=get", page="1")
    assert first.status_code == second.status_code == 200
    assert [when for _, when in rows(first.text)] == expected[:50]
    assert [when for _, when in rows(second.text)] == expected[50:100]
    assert 'id="next-page"' in first.text and 'id="prev-page"' in second.text


def test_the_last_page_has_no_next_link(ui_server: UIServer) -> None:
    counts: dict[str, int] = {}
    for event in ui_server.events:
        counts[event["verb"]] = counts.get(event["verb"], 0) + 1
    verb = next(verb for verb, count in sorted(counts.items()) if count > 50 and count % 50)
    matching = [event for event in ui_server.events if event["verb"] == verb]
    last = (len(matching) - 1) // 50
    page = get(ui_server, "/ui/search", q=f"verb={verb}", page=str(last))
    assert len(rows(page.text)) == len(matching) - 50 * last
    assert 'id="next-page"' not in page.text


def test_event_detail_shows_every_stage_as_stored(ui_server: UIServer) -> None:
    target = next(event for event in ui_server.ingested if event.get("objectRef", {}).get("resource") == "secrets")
    stages = [event for event in ui_server.ingested if event["auditID"] == target["auditID"]]
    page = get(ui_server, "/ui/event", id=target["auditID"])
    assert page.status_code == 200
    shown = [json.loads(html.unescape(block)) for block in JSON_BLOCK.findall(page.text)]
    assert sorted(shown, key=lambda event: event["stage"]) == sorted(stages, key=lambda event: event["stage"])


def test_identity_timeline_is_oldest_first_and_complete(ui_server: UIServer) -> None:
    user = "bob@example.com"
    expected = sorted(shown_time(event) for event in ui_server.events if event["user"].get("username") == user)
    assert len(expected) > 0
    page = get(ui_server, "/ui/identity", user=user)
    assert [when for _, when in rows(page.text)] == expected[:50]
    assert f'<dd id="identity-events">{len(expected):,}</dd>' in page.text


def test_object_history_lists_every_request_on_the_object(ui_server: UIServer) -> None:
    created = next(
        event
        for event in ui_server.posted
        if event.get("verb") == "create"
        and event.get("objectRef", {}).get("name")
        and event.get("stage") == "ResponseComplete"
        and event["objectRef"].get("namespace")
    )
    ref = created["objectRef"]
    expected = sorted(
        (shown_time(event), event["auditID"])
        for event in ui_server.events
        if (event.get("objectRef") or {}).get("resource") == ref["resource"]
        and (event.get("objectRef") or {}).get("namespace") == ref["namespace"]
        and (event.get("objectRef") or {}).get("name") == ref["name"]
    )
    page = get(ui_server, "/ui/object", ref=f"{ref['resource']}/{ref['namespace']}/{ref['name']}")
    assert sorted((when, audit_id) for audit_id, when in rows(page.text)) == expected[:50]


def test_attacker_controlled_fields_are_escaped(ui_server: UIServer) -> None:
    for path, params in (
        ("/ui/identity", {"user": XSS_USER}),
        ("/ui/event", {"id": XSS_AUDIT_ID}),
        ("/ui/search", {"q": "ip=10.9.9.9"}),
        ("/ui/", {"window": "all"}),
    ):
        page = get(ui_server, path, **params)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<i>pod</i>" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
    identity = get(ui_server, "/ui/identity", user=XSS_USER).text
    shown = re.search(r'<span id="identity-name">(.*?)</span>', identity)
    assert shown is not None and html.unescape(shown.group(1)) == XSS_USER


def test_bad_filter_points_at_the_token(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/search", q="verb=get nosuchfield=1")
    assert page.status_code == 400
    caret_line = re.search(r"<pre>(.*?)</pre>", page.text, re.S)
    assert caret_line is not None
    text, caret = html.unescape(caret_line.group(1)).split("\n")
    assert text == "verb=get nosuchfield=1" and caret.index("^") == text.index("nosuchfield")


def test_pages_only_read(ui_server: UIServer) -> None:
    answer = httpx.post(f"{ui_server.url}/ui/search", data={"q": "x"}, timeout=10)
    assert answer.status_code == 405
    assert get(ui_server, "/ui/event", id="no-such-id").status_code == 404


def test_receiver_paths_still_answer(ui_server: UIServer) -> None:
    assert get(ui_server, "/healthz").text.strip() == "ok"
    assert get(ui_server, "/").headers.get("location", "").endswith("/ui/") or get(ui_server, "/").status_code == 200


def test_alerts_page_lists_the_alerts_detection_stored(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/alerts")
    listed = set(
        re.findall(r'<tr class="alert-row[^"]*">\s*<td>.*?</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>', page.text, re.S)
    )
    assert listed, "detection stored no alerts for the attack scenarios"
    rules = {html.unescape(rule) for _, rule in listed}
    only_error = get(ui_server, "/ui/alerts", priority="Error").text
    assert all(
        priority == "Error"
        for priority in re.findall(r'<tr class="alert-row[^"]*">\s*<td>.*?</td>\s*<td>(.*?)</td>', only_error, re.S)
    )
    assert rules


def test_identity_pages_continue_in_order(ui_server: UIServer) -> None:
    counts: dict[str, int] = {}
    for event in ui_server.events:
        name = event["user"].get("username")
        if name:
            counts[name] = counts.get(name, 0) + 1
    user = max(counts, key=lambda name: counts[name])
    assert counts[user] > 100
    expected = sorted(shown_time(event) for event in ui_server.events if event["user"].get("username") == user)
    second = get(ui_server, "/ui/identity", user=user, page="1")
    assert [when for _, when in rows(second.text)] == expected[50:100]
    assert f'<dd id="identity-events">{len(expected):,}</dd>' in second.text


def test_overview_bars_link_to_what_they_count(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/", window="all").text
    links = [html.unescape(link) for link in re.findall(r'<a href="(/ui/search\?q=resource[^"]+)">', page)]
    assert links
    counts: dict[str, int] = {}
    for event in ui_server.events:
        resource = (event.get("objectRef") or {}).get("resource")
        if resource:
            counts[resource] = counts.get(resource, 0) + 1
    top = max(counts, key=lambda name: counts[name])
    assert links[0] == f"/ui/search?q=resource%3D{top}"
    expected = sorted(
        (shown_time(event) for event in ui_server.events if (event.get("objectRef") or {}).get("resource") == top),
        reverse=True,
    )
    assert [when for _, when in rows(httpx.get(f"{ui_server.url}{links[0]}", timeout=30).text)] == expected[:50]
    users = re.findall(r'<a href="(/ui/identity\?user=[^"]+)">', page)
    assert len(users) == 10


def test_a_hostile_user_name_round_trips_through_the_search_link(ui_server: UIServer) -> None:
    identity = get(ui_server, "/ui/identity", user=XSS_USER).text
    link = re.search(r'<a id="identity-search" href="([^"]+)">', identity)
    assert link is not None
    found = httpx.get(f"{ui_server.url}{html.unescape(link.group(1))}", timeout=30)
    assert found.status_code == 200
    assert [audit_id for audit_id, _ in rows(found.text)] == [XSS_AUDIT_ID]
