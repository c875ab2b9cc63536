"""The report as JSON, schema `kubetrail.compliance/v1` (documented in docs/compliance.md; fields only get added)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from kubetrail.report.evidence import EXEC_FILTER, RBAC_FILTER, SECRET_FILTER, Evidence, Request
from kubetrail.report.status import Assessment

SCHEMA = "kubetrail.compliance/v1"


def _time(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _request(item: Request) -> dict[str, Any]:
    return {
        "time": _time(item.time),
        "user": item.user,
        "verb": item.verb,
        "resource": item.resource,
        "subresource": item.subresource,
        "namespace": item.namespace,
        "name": item.name,
        "code": item.code,
        "audit_id": item.audit_id,
    }


def document(assessment: Assessment, evidence: Evidence, *, store: str, generated: datetime) -> dict[str, Any]:
    """The whole report as plain data: what every renderer shows, in one stable shape."""
    framework = assessment.framework
    integrity = evidence.integrity
    return {
        "schema": SCHEMA,
        "generated": _time(generated),
        "store": store,
        "framework": {"id": framework.key, "title": framework.title},
        "period": {"since": _time(evidence.period.since), "until": _time(evidence.period.until)},
        "summary": assessment.counts(),
        "themes": {
            theme.value: {"status": result.status.value, "reasons": result.reasons}
            for theme, result in assessment.themes.items()
        },
        "controls": [
            {
                "id": item.control.id,
                "title": item.control.title,
                "themes": [theme.value for theme in item.control.themes],
                "status": item.status.value,
                "reasons": item.reasons,
            }
            for item in assessment.controls
        ],
        "evidence": {
            "events": evidence.events,
            "requests": evidence.requests,
            "events_per_day": [{"date": _time(day), "requests": count} for day, count in evidence.events_per_day],
            "gap_days": [_time(day) for day in evidence.period_gap_days],
            "missing_fields": evidence.missing_fields,
            "secret_access": {
                "query": SECRET_FILTER,
                "requests": evidence.secret_reads,
                "bodies_recorded": evidence.secret_bodies_recorded,
                "per_day": [{"date": _time(day), "requests": count} for day, count in evidence.secret_reads_per_day],
                "by_user_namespace": [
                    {
                        "user": item.user,
                        "namespace": item.namespace,
                        "requests": item.requests,
                        "verbs": item.verbs,
                        "names": item.names,
                    }
                    for item in evidence.secret_access
                ],
            },
            "rbac_changes": {
                "query": RBAC_FILTER,
                "requests": evidence.rbac_change_count,
                "items": [_request(item) for item in evidence.rbac_changes],
            },
            "exec_sessions": {
                "query": EXEC_FILTER,
                "requests": evidence.exec_count,
                "items": [_request(item) for item in evidence.exec_sessions],
            },
            "alerts": {
                "total": sum(item.count for item in evidence.alerts),
                "by_rule": [
                    {"rule": item.rule, "priority": item.priority, "count": item.count} for item in evidence.alerts
                ],
            },
            "retention": {
                "required_days": assessment.required_days,
                "basis": framework.retention_basis,
                "clusters": [
                    {
                        "cluster": item.cluster,
                        "oldest": _time(item.oldest),
                        "newest": _time(item.newest),
                        "days_covered": item.days_covered,
                        "gap_days": [_time(day) for day in item.gap_days],
                    }
                    for item in evidence.retention
                ],
            },
            "integrity": None
            if integrity is None
            else {
                "ok": integrity.ok,
                "head": integrity.head,
                "files": integrity.files,
                "events": integrity.events,
                "findings": integrity.findings,
            },
            "apiserver": None
            if evidence.apiserver is None
            else {
                "manifest": evidence.apiserver_source,
                "findings": [
                    {
                        "control": finding.control,
                        "title": finding.title,
                        "status": finding.status.value,
                        "detail": finding.detail,
                        "fix": finding.fix,
                    }
                    for finding in evidence.apiserver
                ],
            },
        },
    }


def render_json(assessment: Assessment, evidence: Evidence, *, store: str, generated: datetime) -> str:
    return json.dumps(document(assessment, evidence, store=store, generated=generated), indent=2, ensure_ascii=False)
