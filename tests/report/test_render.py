"""The three renderings: HTML self-contained, printable and escaped; JSON in its documented shape; Markdown tables."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser

from kubetrail.report import FRAMEWORKS, SCHEMA, Period, assess, document, render_html, render_json, render_md
from kubetrail.report.evidence import ClusterRetention, Evidence, Integrity, Request, SecretAccess

HOSTILE = '<script>alert("x")</script><img src=https://evil.example/x onerror=alert(1)>'
NOW = datetime(2026, 3, 20, tzinfo=UTC)


def hostile_evidence() -> Evidence:
    period = Period(datetime(2026, 3, 17, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
    evidence = Evidence(period=period, requests=12, events=30)
    evidence.events_per_day = [(date(2026, 3, 17), 4), (date(2026, 3, 18), 0), (date(2026, 3, 19), 8)]
    evidence.secret_reads_per_day = [(date(2026, 3, 17), 1), (date(2026, 3, 18), 0), (date(2026, 3, 19), 2)]
    evidence.secret_access = [SecretAccess(HOSTILE, "ns|<b>", 3, ["get"], 2)]
    evidence.secret_reads = 3
    change = Request(NOW, HOSTILE, "create", "clusterrolebindings", "", "", "<i>admin</i>", 201, "id-1")
    evidence.rbac_changes, evidence.rbac_change_count = [change], 1
    evidence.retention = [ClusterRetention("prod", datetime(2026, 3, 17, tzinfo=UTC), NOW, 3, [date(2026, 3, 18)])]
    evidence.integrity = Integrity(False, "ab" * 32, 2, 30, [f"altered: data/{HOSTILE}.parquet: changed"])
    return evidence


def rendered(output: str) -> str:
    evidence = hostile_evidence()
    assessment = assess(FRAMEWORKS["soc2"], evidence)
    if output == "json":
        return render_json(assessment, evidence, store="/var/lib/<kt>", generated=NOW)
    doc = document(assessment, evidence, store="/var/lib/<kt>", generated=NOW)
    return render_html(doc) if output == "html" else render_md(doc)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_and_printable() -> None:
    page = rendered("html")
    parser = _Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    for _, attrs in parser.tags:
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http:", "https:", "//")), attrs
    assert not re.search(r"<[^>]*\s(src|href)\s*=\s*[\"']?(https?:)?//", page)
    assert "url(" not in page and "@import" not in page
    assert "@media print" in page and "<style>" in page
    assert page.count("<svg") == 2  # requests per day and secret reads per day


def test_html_escapes_every_stored_value() -> None:
    page = rendered("html")
    assert "<script>" not in page and "<img" not in page and "<i>admin</i>" not in page and "ns|<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;i&gt;admin&lt;/i&gt;" in page and "/var/lib/&lt;kt&gt;" in page


def test_chart_bars_scale_to_the_busiest_day() -> None:
    page = rendered("html")
    heights = [float(value) for value in re.findall(r'<rect [^>]*height="([0-9.]+)"', page)]
    requests = heights[:3]
    assert requests[1] == 0 and requests[2] == 2 * requests[0] > 0


def test_json_schema_is_stable() -> None:
    doc = json.loads(rendered("json"))
    assert doc["schema"] == SCHEMA == "kubetrail.compliance/v1"
    assert set(doc) == {
        "schema",
        "generated",
        "store",
        "framework",
        "period",
        "summary",
        "themes",
        "controls",
        "evidence",
    }
    assert set(doc["evidence"]) == {
        "events",
        "requests",
        "events_per_day",
        "gap_days",
        "missing_fields",
        "secret_access",
        "rbac_changes",
        "exec_sessions",
        "alerts",
        "retention",
        "integrity",
        "apiserver",
    }
    assert set(doc["themes"]) == {
        "access-logging",
        "secret-access",
        "rbac-changes",
        "pod-exec",
        "retention",
        "integrity",
    }
    assert set(doc["controls"][0]) == {"id", "title", "themes", "status", "reasons"}
    assert set(doc["summary"]) == {"pass", "fail", "not-evidenced"}
    assert sum(doc["summary"].values()) == len(doc["controls"]) == len(FRAMEWORKS["soc2"].controls)
    assert doc["period"] == {"since": "2026-03-17T00:00:00Z", "until": "2026-03-20T00:00:00Z"}
    assert doc["evidence"]["rbac_changes"]["items"][0]["user"] == HOSTILE
    assert doc["evidence"]["secret_access"]["query"] == "resource=secrets verb in (get,list,watch)"
    assert doc["evidence"]["integrity"]["ok"] is False and doc["themes"]["integrity"]["status"] == "fail"
    assert doc["evidence"]["apiserver"] is None


def test_markdown_keeps_table_cells_intact() -> None:
    text = rendered("md")
    row = next(line for line in text.splitlines() if "ns\\|<b>" in line)
    assert row.count(" | ") == 4  # the pipe in the namespace is escaped, so the row keeps 5 cells
    assert "| CC7.2 | FAIL |" in text
