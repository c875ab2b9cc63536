"""The report as one self-contained, printable HTML page: inline CSS and SVG charts, no external assets.

Every value from the store (user names, namespaces, object names) is HTML-escaped; nothing is fetched.
"""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24;
padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .45rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:600;padding:.05rem .4rem;border-radius:3px;white-space:nowrap}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.not-evidenced{background:#fff8c5;color:#7d4e00}.meta{color:#57606a}code{font-size:.9em;word-break:break-all}
svg{display:block;margin:.5rem 0}svg text{font-size:10px;fill:#57606a}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}tr,svg{break-inside:avoid}
.status{border:1px solid currentColor}}
"""

_LABEL = {"pass": "pass", "fail": "fail", "not-evidenced": "not evidenced"}


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _status(status: str) -> str:
    return f'<span class="status {_e(status)}">{_e(_LABEL.get(status, status))}</span>'


def _table(headers: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if index in numeric else f"<td>{cell}</td>" for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar_chart(points: list[tuple[str, int]], *, title: str, color: str) -> str:
    """An inline SVG bar chart of (label, value) per day; labels at the first, middle and last bar."""
    width, height, left, bottom = 900, 160, 40, 20
    peak = max((value for _, value in points), default=0) or 1
    slot = (width - left) / max(len(points), 1)
    bars: list[str] = []
    for index, (label, value) in enumerate(points):
        bar = (height - bottom - 10) * value / peak
        x = left + index * slot
        bars.append(
            f'<rect x="{x + slot * 0.1:.1f}" y="{height - bottom - bar:.1f}" width="{max(slot * 0.8, 1):.1f}" '
            f'height="{bar:.1f}" fill="{color}"><title>{_e(label)}: {value:,}</title></rect>'
        )
    labels = sorted({0, len(points) // 2, len(points) - 1}) if points else []
    texts = [
        f'<text x="{left + index * slot + slot / 2:.1f}" y="{height - 5}" text-anchor="middle">'
        f"{_e(points[index][0])}</text>"
        for index in labels
    ]
    axis = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#d0d7de"/>'
        f'<text x="{left - 4}" y="14" text-anchor="end">{peak:,}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>'
    )
    return (
        f'<svg role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" height="{height}">{axis}{"".join(bars)}{"".join(texts)}</svg>'
    )


def _requests(section: dict[str, Any]) -> str:
    rows = [
        [
            _e(item["time"]),
            _e(item["user"]),
            _e(item["verb"]),
            _e("/".join(part for part in (item["resource"], item["subresource"]) if part)),
            _e(item["namespace"]),
            _e(item["name"]),
            _e(item["code"]),
        ]
        for item in section["items"]
    ]
    more = (
        f"<p class=meta>First {len(section['items'])} of {section['requests']:,} listed.</p>"
        if len(section["items"]) < section["requests"]
        else ""
    )
    return (
        f"<p>{section['requests']:,} request(s). Query: <code>{_e(section['query'])}</code></p>"
        + (_table(["time", "user", "verb", "resource", "namespace", "name", "code"], rows) if rows else "")
        + more
    )


def render_html(doc: dict[str, Any]) -> str:
    """The printable page: summary, controls, themes, charts and every evidence table."""
    evidence = doc["evidence"]
    summary = doc["summary"]
    parts = [
        f"<h1>Compliance evidence: {_e(doc['framework']['title'])}</h1>",
        f"<p class=meta>Store <code>{_e(doc['store'])}</code> · period {_e(doc['period']['since'])} to "
        f"{_e(doc['period']['until'])} · generated {_e(doc['generated'])}</p>",
        f"<p>{_status('pass')} {summary['pass']} {_status('fail')} {summary['fail']} "
        f"{_status('not-evidenced')} {summary['not-evidenced']}</p>",
        "<h2>Controls</h2>",
        _table(
            ["control", "status", "requirement", "reasons"],
            [
                [
                    _e(item["id"]),
                    _status(item["status"]),
                    _e(item["title"]),
                    "<br>".join(_e(reason) for reason in item["reasons"]),
                ]
                for item in doc["controls"]
            ],
        ),
        "<h2>Evidence themes</h2>",
        _table(
            ["theme", "status", "reasons"],
            [
                [_e(name), _status(theme["status"]), "<br>".join(_e(reason) for reason in theme["reasons"])]
                for name, theme in doc["themes"].items()
            ],
        ),
        "<h2>Access logging</h2>",
        f"<p>{evidence['requests']:,} requests ({evidence['events']:,} events) in the period.</p>",
        bar_chart(
            [(item["date"], item["requests"]) for item in evidence["events_per_day"]],
            title="Requests per day",
            color="#0969da",
        ),
    ]
    if evidence["gap_days"]:
        parts.append(f"<p>Days without events: {_e(', '.join(evidence['gap_days']))}</p>")
    missing = evidence["missing_fields"]
    parts.append(
        "<p class=meta>Completed requests missing a field: "
        + ", ".join(f"{_e(name)} {count:,}" for name, count in missing.items())
        + "</p>"
    )
    secrets = evidence["secret_access"]
    parts += [
        "<h2>Secret access</h2>",
        f"<p>{secrets['requests']:,} read(s); {secrets['bodies_recorded']:,} recorded with bodies. "
        f"Query: <code>{_e(secrets['query'])}</code></p>",
        bar_chart(
            [(item["date"], item["requests"]) for item in secrets["per_day"]],
            title="Secret reads per day",
            color="#bf3989",
        ),
        _table(
            ["user", "namespace", "requests", "verbs", "secrets"],
            [
                [
                    _e(item["user"]),
                    _e(item["namespace"]),
                    f"{item['requests']:,}",
                    _e(", ".join(item["verbs"])),
                    f"{item['names']:,}",
                ]
                for item in secrets["by_user_namespace"]
            ],
            numeric=(2, 4),
        ),
        "<h2>RBAC changes</h2>",
        _requests(evidence["rbac_changes"]),
        "<h2>Exec, attach and port-forward</h2>",
        _requests(evidence["exec_sessions"]),
    ]
    alerts = evidence["alerts"]
    parts += ["<h2>Detection alerts</h2>", f"<p>{alerts['total']:,} alert(s) in the period.</p>"]
    if alerts["by_rule"]:
        parts.append(
            _table(
                ["rule", "priority", "alerts"],
                [[_e(item["rule"]), _e(item["priority"]), f"{item['count']:,}"] for item in alerts["by_rule"]],
                numeric=(2,),
            )
        )
    retention = evidence["retention"]
    parts += [
        "<h2>Retention</h2>",
        f"<p>{retention['required_days']} days required: {_e(retention['basis'])}.</p>",
        _table(
            ["cluster", "oldest", "newest", "days held", "days without events"],
            [
                [
                    _e(item["cluster"]),
                    _e(item["oldest"]),
                    _e(item["newest"]),
                    str(item["days_covered"]),
                    _e(", ".join(item["gap_days"]) or "none"),
                ]
                for item in retention["clusters"]
            ],
            numeric=(3,),
        ),
        "<h2>Integrity</h2>",
    ]
    integrity = evidence["integrity"]
    if integrity is None:
        parts.append("<p>Not verified.</p>")
    else:
        verdict = _status("pass" if integrity["ok"] else "fail")
        parts.append(
            f"<p>{verdict} <code>kubetrail verify</code>: {integrity['files']:,} sealed segments, "
            f"{integrity['events']:,} events; chain head <code>{_e(integrity['head'])}</code></p>"
        )
        if integrity["findings"]:
            parts.append("<ul>" + "".join(f"<li>{_e(item)}</li>" for item in integrity["findings"]) + "</ul>")
    if evidence["apiserver"] is not None:
        parts += [
            f"<h2>API server settings (<code>{_e(evidence['apiserver']['manifest'])}</code>)</h2>",
            _table(
                ["control", "status", "detail", "fix"],
                [
                    [_e(item["control"]), _e(item["status"]), _e(item["detail"]), _e(item["fix"])]
                    for item in evidence["apiserver"]["findings"]
                ],
            ),
        ]
    title = f"Compliance evidence: {doc['framework']['title']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
