"""The report as Markdown (for tickets and pull requests), rendered from `render_json.document`."""

from __future__ import annotations

from typing import Any

_MARK = {"pass": "PASS", "fail": "FAIL", "not-evidenced": "NOT EVIDENCED"}


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows)
    return lines


def _requests(section: dict[str, Any]) -> list[str]:
    lines = [f"{section['requests']:,} request(s); query: `{_cell(section['query'])}`", ""]
    if section["items"]:
        lines += _table(
            ["time", "user", "verb", "resource", "namespace", "name", "code"],
            [
                [
                    item["time"],
                    item["user"],
                    item["verb"],
                    "/".join(part for part in (item["resource"], item["subresource"]) if part),
                    item["namespace"],
                    item["name"],
                    item["code"],
                ]
                for item in section["items"]
            ],
        )
        if len(section["items"]) < section["requests"]:
            lines.append(f"(first {len(section['items'])} listed)")
    return lines


def render_md(doc: dict[str, Any]) -> str:
    """Markdown: summary, controls with reasons, then each evidence section."""
    evidence = doc["evidence"]
    summary = doc["summary"]
    lines = [
        f"# Compliance evidence: {_cell(doc['framework']['title'])}",
        "",
        f"Store `{_cell(doc['store'])}`, period {doc['period']['since']} to {doc['period']['until']}, "
        f"generated {doc['generated']}.",
        "",
        f"**{summary['pass']} pass, {summary['fail']} fail, {summary['not-evidenced']} not evidenced.**",
        "",
        "## Controls",
        "",
    ]
    lines += _table(
        ["control", "status", "title", "reasons"],
        [[item["id"], _MARK[item["status"]], item["title"], "; ".join(item["reasons"])] for item in doc["controls"]],
    )
    lines += ["", "## Evidence themes", ""]
    lines += _table(
        ["theme", "status", "reasons"],
        [[name, _MARK[theme["status"]], "; ".join(theme["reasons"])] for name, theme in doc["themes"].items()],
    )
    lines += ["", "## Access logging", "", f"{evidence['requests']:,} requests ({evidence['events']:,} events)."]
    if evidence["gap_days"]:
        lines.append(f"Days without events: {', '.join(evidence['gap_days'])}.")
    lines += [""]
    lines += _table(["date", "requests"], [[item["date"], item["requests"]] for item in evidence["events_per_day"]])
    secrets = evidence["secret_access"]
    lines += [
        "",
        "## Secret access",
        "",
        f"{secrets['requests']:,} read(s); query: `{_cell(secrets['query'])}`; "
        f"{secrets['bodies_recorded']:,} recorded with bodies.",
        "",
    ]
    lines += _table(
        ["user", "namespace", "requests", "verbs", "secrets"],
        [
            [item["user"], item["namespace"], item["requests"], ",".join(item["verbs"]), item["names"]]
            for item in secrets["by_user_namespace"]
        ],
    )
    lines += ["", "## RBAC changes", "", *_requests(evidence["rbac_changes"])]
    lines += ["", "## Exec sessions", "", *_requests(evidence["exec_sessions"])]
    alerts = evidence["alerts"]
    lines += ["", "## Detection alerts", "", f"{alerts['total']:,} alert(s) in the period.", ""]
    if alerts["by_rule"]:
        lines += _table(
            ["rule", "priority", "alerts"],
            [[item["rule"], item["priority"], item["count"]] for item in alerts["by_rule"]],
        )
    retention = evidence["retention"]
    lines += ["", "## Retention", "", f"{retention['required_days']} days required: {_cell(retention['basis'])}.", ""]
    lines += _table(
        ["cluster", "oldest", "newest", "days", "days without events"],
        [
            [item["cluster"], item["oldest"], item["newest"], item["days_covered"], len(item["gap_days"])]
            for item in retention["clusters"]
        ],
    )
    integrity = evidence["integrity"]
    lines += ["", "## Integrity", ""]
    if integrity is None:
        lines.append("Not verified.")
    else:
        verdict = "OK" if integrity["ok"] else "FAILED"
        lines.append(
            f"`kubetrail verify`: {verdict}, {integrity['files']} segments, {integrity['events']:,} events, "
            f"chain head `{integrity['head']}`."
        )
        lines += [f"- {_cell(finding)}" for finding in integrity["findings"]]
    if evidence["apiserver"] is not None:
        lines += ["", f"## API server settings (`{_cell(evidence['apiserver']['manifest'])}`)", ""]
        lines += _table(
            ["control", "status", "detail", "fix"],
            [
                [item["control"], item["status"].upper(), item["detail"], item["fix"]]
                for item in evidence["apiserver"]["findings"]
            ],
        )
    return "\n".join(lines) + "\n"
