"""The UI's pages over HTTP against a real `serve`: what they show is checked against the logs the store was
filled from (one row per request: the stage events sharing an auditID), never against the UI's own output."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.ui.conftest import XSS_AUDIT_ID, XSS_USER, UIServer

ROW = re.compile(r'class="request-link" href="/ui/request\?id=([^"&]*)[^"]*">([^<]+)</a>')
JSON_BLOCK = re.compile(r'<pre class="json"[^>]*>(.*?)</pre>', re.S)


def shown_time(event: dict[str, Any]) -> str:
    """How the UI prints a request's time: requestReceivedTimestamp in UTC, to the millisecond."""
    return str(event["requestReceivedTimestamp"])[:23].replace("T", " ")


def received(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["requestReceivedTimestamp"]).replace("Z", "+00:00"))


def requests(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The requests of a log: its stage events grouped by auditID."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["auditID"], []).append(event)
    return grouped


def completed(stages: list[dict[str, Any]]) -> bool:
    """Whether a request's final stage (ResponseComplete, or Panic) is in the log: counts count these."""
    return any(event["stage"] in ("ResponseComplete", "Panic") for event in stages)


def rows(page: str) -> list[tuple[str, str]]:
    """(auditID, time) of the request rows of a page's tables (its timeline when it has one)."""
    if "Timeline (requests" in page:
        page = page[page.index("Timeline (requests") :]
    return [(html.unescape(audit_id), when) for audit_id, when in ROW.findall(page)]


def get(server: UIServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, timeout=30)


def matching(server: UIServer, test: Any) -> list[tuple[str, str]]:
    """(time as shown, auditID) of the requests with a stage passing `test`, newest first."""
    found = {
        audit_id: shown_time(stages[0])
        for audit_id, stages in requests(server.events).items()
        if any(test(event) for event in stages)
    }
    return sorted(((when, audit_id) for audit_id, when in found.items()), reverse=True)


def test_search_lists_each_request_once_newest_first(ui_server: UIServer) -> None:
    expected = matching(ui_server, lambda event: event.get("verb") == "get")
    assert len(expected) > 100
    first, second = get(ui_server, "/ui/search", q="verb=get"), get(ui_server, "/ui/search", q="verb=get", page="1")
    assert first.status_code == second.status_code == 200
    assert [(when, audit_id) for audit_id, when in rows(first.text)] == expected[:50]
    assert [(when, audit_id) for audit_id, when in rows(second.text)] == expected[50:100]
    assert 'id="next-page"' in first.text and 'id="prev-page"' in second.text


def test_a_row_merges_the_stages_of_its_request(ui_server: UIServer) -> None:
    long_running = next(
        stages
        for stages in requests(ui_server.ingested).values()
        if {event["stage"] for event in stages} >= {"RequestReceived", "ResponseStarted", "ResponseComplete"}
    )
    audit_id = long_running[0]["auditID"]
    page = get(ui_server, "/ui/search", q=f"id={audit_id}").text
    assert [found for found, _ in rows(page)] == [audit_id]
    row = re.search(r'<tr class="request-row[^"]*" data-audit-id="[^"]*">(.*?)</tr>\n', page, re.S)
    assert row is not None
    assert "<summary>RR+RS+RC</summary>" in row.group(1)
    final = next(event for event in long_running if event["stage"] == "ResponseComplete")
    assert f'<td class="code">{final["responseStatus"]["code"]}</td>' in row.group(1)
    assert all(f"<td>{event['stage']}</td>" in row.group(1) for event in long_running)


def test_the_hit_count_counts_requests_not_stages(ui_server: UIServer) -> None:
    expected = [
        item
        for item in matching(ui_server, lambda event: (event.get("objectRef") or {}).get("resource") == "secrets")
        if completed(requests(ui_server.events)[item[1]])
    ]
    stage_events = [event for event in ui_server.events if (event.get("objectRef") or {}).get("resource") == "secrets"]
    assert len(stage_events) > len(expected)
    page = get(ui_server, "/ui/search", q="resource=secrets").text
    assert re.search(r'<span id="hit-count">([\d,]+)</span>', page).group(1) == f"{len(expected):,}"  # type: ignore[union-attr]
    counts = [int(value.replace(",", "")) for value in re.findall(r": ([\d,]+)</title></rect>", page)]
    assert sum(counts) == len(expected)


def test_facets_count_requests_and_add_a_term(ui_server: UIServer) -> None:
    chosen = {
        audit_id: stages
        for audit_id, stages in requests(ui_server.events).items()
        if stages[0].get("verb") == "list" and completed(stages)
    }
    by_agent = Counter(stages[0].get("userAgent") for stages in chosen.values() if stages[0].get("userAgent"))
    page = get(ui_server, "/ui/search", q="verb=list").text
    facet = re.search(r'<section class="facet" data-facet="ua">(.*?)</section>', page, re.S)
    assert facet is not None
    shown = re.findall(
        r'<a class="facet-link" href="([^"]+)" title="([^"]*)">.*?</a> <span class="count">([\d,]+)</span>',
        facet.group(1),
    )
    assert shown
    top = sorted(by_agent.items(), key=lambda item: (-item[1], item[0]))[: len(shown)]
    assert [(html.unescape(title), int(count.replace(",", ""))) for _, title, count in shown] == top
    link = html.unescape(shown[0][0])
    narrowed = httpx.get(f"{ui_server.url}{link}", timeout=30).text
    agent = top[0][0]
    assert re.search(r'<span id="hit-count">([\d,]+)</span>', narrowed).group(1) == f"{top[0][1]:,}"  # type: ignore[union-attr]
    box = re.search(r'<input id="filter" name="q" type="text" value="([^"]*)"', narrowed)
    assert box is not None and html.unescape(box.group(1)) == f'verb=list ua="{agent}"'


def test_non_resource_requests_show_their_uri(ui_server: UIServer) -> None:
    event = next(
        event for event in ui_server.events if not event.get("objectRef") and event["requestURI"] == "/version"
    )
    page = get(ui_server, "/ui/search", q="uri=/version").text
    assert '<span class="uri">/version</span>' in page
    assert event["auditID"] in [audit_id for audit_id, _ in rows(page)] or len(rows(page)) == 50


def test_request_page_shows_every_stage_as_stored(ui_server: UIServer) -> None:
    target = next(event for event in ui_server.ingested if event.get("objectRef", {}).get("resource") == "secrets")
    stages = [event for event in ui_server.ingested if event["auditID"] == target["auditID"]]
    page = get(ui_server, "/ui/request", id=target["auditID"])
    assert page.status_code == 200
    shown = [json.loads(html.unescape(block)) for block in JSON_BLOCK.findall(page.text)]
    assert sorted(shown, key=lambda event: event["stage"]) == sorted(stages, key=lambda event: event["stage"])
    listed = re.search(r'<dd id="request-stages">(.*?)</dd>', page.text)
    assert listed is not None and [part.split()[0] for part in listed.group(1).split(", ")] == [
        stage
        for stage in ("RequestReceived", "ResponseStarted", "ResponseComplete")
        if stage in {e["stage"] for e in stages}
    ]


def test_identity_timeline_is_oldest_first_complete_and_without_the_user_column(ui_server: UIServer) -> None:
    user = "bob@example.com"
    theirs = requests([event for event in ui_server.events if event["user"].get("username") == user])
    expected = sorted((shown_time(stages[0]), audit_id) for audit_id, stages in theirs.items())
    page = get(ui_server, "/ui/identity", user=user).text
    assert [(when, audit_id) for audit_id, when in rows(page)] == expected[:50]
    events = sum(len(stages) for stages in theirs.values())
    assert f'<dd id="identity-events">{events:,}</dd>' in page
    timeline = page[page.index("Timeline (requests") :]
    assert "<th>user</th>" not in timeline and 'class="user-cell"' not in timeline


def test_identity_page_lists_its_addresses_clients_tokens_and_alerts(ui_server: UIServer) -> None:
    grants = [
        event
        for event in ui_server.events
        if (event.get("objectRef") or {}).get("subresource") == "token"
        and event["verb"] == "create"
        and event["stage"] == "ResponseComplete"
    ]
    assert grants, "the attack log holds a TokenRequest"
    minter, grant = grants[0]["user"]["username"], grants[0]
    page = get(ui_server, "/ui/identity", user=minter).text
    theirs = [event for event in ui_server.events if event["user"].get("username") == minter]
    first_seen: dict[str, str] = {}
    for event in sorted(theirs, key=received):
        first_seen.setdefault(event["sourceIPs"][0], shown_time(event))
    section = page[page.index('id="source-ips"') : page.index('id="user-agents"')]
    assert [html.unescape(ip) for ip in re.findall(r'class="facet-link" href="[^"]*">([^<]+)</a>', section)] == list(
        first_seen
    )
    tokens = page[page.index('id="tokens"') :]
    account = f"system:serviceaccount:{grant['objectRef']['namespace']}:{grant['objectRef']['name']}"
    assert html.escape(account) in tokens
    used_from = {
        event["sourceIPs"][0]
        for event in ui_server.events
        if event["user"].get("username") == account and received(event) >= received(grant)
    }
    shown = set(re.findall(r'<li class="token-use">([^ ]+) ·', tokens))
    assert shown == used_from and "203.0.113.77" in shown | {"198.51.100.23"} | shown
    alerts = page[page.index('id="identity-alerts"') : page.index('id="impersonated"')]
    assert "Service Account Token Requested" in alerts


def test_impersonation_is_shown_from_both_sides(ui_server: UIServer) -> None:
    acting = next(event for event in ui_server.events if (event.get("impersonatedUser") or {}).get("username"))
    impersonator, target = acting["user"]["username"], acting["impersonatedUser"]["username"]
    first = get(ui_server, "/ui/identity", user=impersonator).text
    section = first[first.index('id="impersonated"') : first.index('id="impersonated-by"')]
    assert html.escape(target) in section
    second = get(ui_server, "/ui/identity", user=target).text
    section = second[second.index('id="impersonated-by"') : second.index('id="source-ips"')]
    assert html.escape(impersonator) in section


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
    on_it = requests(
        [
            event
            for event in ui_server.events
            if (event.get("objectRef") or {}).get("resource") == ref["resource"]
            and (event.get("objectRef") or {}).get("namespace") == ref["namespace"]
            and (event.get("objectRef") or {}).get("name") == ref["name"]
        ]
    )
    expected = sorted((shown_time(stages[0]), audit_id) for audit_id, stages in on_it.items())
    page = get(ui_server, "/ui/object", ref=f"{ref['resource']}/{ref['namespace']}/{ref['name']}")
    assert sorted((when, audit_id) for audit_id, when in rows(page.text)) == expected[:50]


def test_alert_page_links_its_entities_and_shows_what_happened_around_it(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/alerts", rule="Binding To Cluster-Admin").text
    named = {event["auditID"]: event for event in ui_server.events if (event.get("objectRef") or {}).get("name")}
    links = [html.unescape(link) for link in re.findall(r'<a class="alert-link" href="([^"]+)">', page)]
    link, audit_id = next(
        (link, found.group(1))
        for link in links
        if (found := re.search(r"[?&]id=([^&]+)", link)) is not None and found.group(1) in named
    )
    alert = httpx.get(f"{ui_server.url}{link}", timeout=30).text
    trigger = named[audit_id]
    user, name = trigger["user"]["username"], trigger["objectRef"]["name"]
    message = re.search(r'<dd id="alert-message">(.*?)</dd>', alert, re.S)
    assert message is not None
    # the query string is encoded as a form is (`@` and `:` escaped): which alert comes first decides the user
    assert f'<a class="user-link" href="/ui/identity?{urlencode({"user": user})}">{user}</a>' in message.group(1)
    object_link = (
        rf'<a class="object" href="/ui/object\?resource=clusterrolebindings(&amp;ns=)?&amp;name={name}">{name}</a>'
    )
    assert re.search(object_link, message.group(1))
    moment = received(trigger)
    near = requests(
        [
            event
            for event in ui_server.events
            if event["user"].get("username") == user and abs(received(event) - moment) <= timedelta(minutes=15)
        ]
    )
    around = alert[alert.index('id="around"') : alert.index('id="object-history"')]
    assert sorted(audit for audit, _ in rows(around)) == sorted(near)
    assert f'data-audit-id="{audit_id}"' in around and "marked" in around


def test_overview_falls_back_to_the_data_range_with_a_note(ui_server: UIServer) -> None:
    newest = max(received(event) for event in ui_server.events)
    assert datetime.now(UTC) - newest > timedelta(days=7), "the logs are historical"
    for window in ("15m", "1h", "24h", "7d"):
        page = get(ui_server, "/ui/", window=window).text
        note = re.search(r'<p class="note" id="range-note">(.*?)</p>', page)
        assert note is not None and f"nothing in the last {window}" in html.unescape(note.group(1))
        assert f'id="total-events">{len(ui_server.events):,}<' in page
    every = get(ui_server, "/ui/", window="all").text
    assert 'id="range-note"' not in every


def test_search_says_when_it_shows_the_data_own_range(ui_server: UIServer) -> None:
    """Without since=/until= a search covers all stored data: on a historical store the page says where it is."""
    first = min(received(event) for event in ui_server.events)
    last = max(received(event) for event in ui_server.events)
    page = get(ui_server, "/ui/search", q="verb=get").text
    note = re.search(r'<p class="note" id="range-note">(.*?)</p>', page)
    assert note is not None
    assert html.unescape(note.group(1)) == (
        f"showing the data's own range: {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC; nothing in the last 24h"
    )
    bounded = get(ui_server, "/ui/search", q=f"verb=get since={first:%Y-%m-%dT%H:%M:%SZ}").text
    assert 'id="hit-count"' in bounded and 'id="range-note"' not in bounded


def test_attacker_controlled_fields_are_escaped(ui_server: UIServer) -> None:
    for path, params in (
        ("/ui/identity", {"user": XSS_USER}),
        ("/ui/request", {"id": XSS_AUDIT_ID}),
        ("/ui/search", {"q": "ip=10.9.9.9"}),
        ("/ui/", {"window": "all"}),
    ):
        page = get(ui_server, path, **params)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<i>pod</i>" not in page.text
        assert "<b>agent</b>" not in page.text
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
    assert get(ui_server, "/ui/request", id="no-such-id").status_code == 404


def test_receiver_paths_still_answer(ui_server: UIServer) -> None:
    assert get(ui_server, "/healthz").text.strip() == "ok"
    assert get(ui_server, "/").headers.get("location", "").endswith("/ui/") or get(ui_server, "/").status_code == 200


def test_alerts_page_lists_the_alerts_detection_stored(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/alerts")
    listed = set(
        re.findall(r'<tr class="alert-row[^"]*">\s*<td>.*?</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>', page.text, re.S)
    )
    assert listed, "detection stored no alerts for the attack scenarios"
    only_error = get(ui_server, "/ui/alerts", priority="Error").text
    assert all(
        priority == "Error"
        for priority in re.findall(r'<tr class="alert-row[^"]*">\s*<td>.*?</td>\s*<td>(.*?)</td>', only_error, re.S)
    )


def test_identity_pages_continue_in_order(ui_server: UIServer) -> None:
    counts = Counter(
        stages[0]["user"].get("username") for stages in requests(ui_server.events).values() if stages[0]["user"]
    )
    user = max(counts, key=lambda name: counts[name] or 0)
    assert counts[user] > 100
    theirs = requests([event for event in ui_server.events if event["user"].get("username") == user])
    expected = sorted((shown_time(stages[0]), audit_id) for audit_id, stages in theirs.items())
    second = get(ui_server, "/ui/identity", user=user, page="1")
    assert [(when, audit_id) for audit_id, when in rows(second.text)] == expected[50:100]


def test_overview_bars_link_to_what_they_count(ui_server: UIServer) -> None:
    page = get(ui_server, "/ui/", window="all").text
    links = [html.unescape(link) for link in re.findall(r'<a href="(/ui/search\?q=resource[^"]+)">', page)]
    assert links
    counts = Counter((event.get("objectRef") or {}).get("resource") for event in ui_server.events)
    counts.pop(None, None)
    top = max(counts, key=lambda name: counts[name])
    assert links[0] == f"/ui/search?q=resource%3D{top}"
    expected = matching(ui_server, lambda event: (event.get("objectRef") or {}).get("resource") == top)
    found = httpx.get(f"{ui_server.url}{links[0]}", timeout=30).text
    assert [(when, audit_id) for audit_id, when in rows(found)] == expected[:50]
    users = re.findall(r'<a href="(/ui/identity\?user=[^"]+)">', page)
    assert len(users) == 10


def test_a_hostile_user_name_round_trips_through_the_search_link(ui_server: UIServer) -> None:
    identity = get(ui_server, "/ui/identity", user=XSS_USER).text
    link = re.search(r'<a id="identity-search" href="([^"]+)">', identity)
    assert link is not None
    found = httpx.get(f"{ui_server.url}{html.unescape(link.group(1))}", timeout=30)
    assert found.status_code == 200
    assert [audit_id for audit_id, _ in rows(found.text)] == [XSS_AUDIT_ID]
