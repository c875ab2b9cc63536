"""Entities inside an alert's message become links; everything else stays escaped text."""

from __future__ import annotations

from kubetrail.ui.links import alert_entities, linkify, quoted


def test_entities_become_links_and_markup_stays_text() -> None:
    entities = alert_entities(
        {
            "ka.user.name": "<b>eve</b>",
            "ka.target.resource": "secrets",
            "ka.target.namespace": "prod",
            "ka.target.name": "db",
        },
        identity="/ui/identity",
        object_url="/ui/object",
        search="/ui/search",
    )
    shown = str(linkify("<b>eve</b> read secret prod/db-password <script>", entities))
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert '<a class="user-link" href="/ui/identity?user=%3Cb%3Eeve%3C%2Fb%3E">&lt;b&gt;eve&lt;/b&gt;</a>' in shown
    assert '<a class="namespace-link" href="/ui/search?q=ns%3Dprod">prod</a>' in shown


def test_the_longest_entity_wins_and_short_ones_are_not_linked() -> None:
    shown = str(
        linkify(
            "pods web-1 and web-10 in ns", [("web-1", "/a", "object"), ("web-10", "/b", "object"), ("ns", "/c", "x")]
        )
    )
    assert '<a class="object" href="/b">web-10</a>' in shown and '<a class="object" href="/a">web-1</a>' in shown
    assert 'href="/c"' not in shown


def test_filter_values_are_quoted_when_needed() -> None:
    assert quoted("bob@example.com") == "bob@example.com"
    assert quoted('kubectl/v1 (linux) "x"') == '"kubectl/v1 (linux) \\"x\\""'
