"""Stage events merge into requests as kube-apiserver writes them: one auditID, up to four stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubetrail.ui.requests import STAGE_COLUMNS, merge

T0 = datetime(2026, 3, 19, 10, tzinfo=UTC)


def _stage(audit_id: str, stage: str, after_ms: int, code: int | None, **values: object) -> tuple[object, ...]:
    row = {name: None for name in STAGE_COLUMNS}
    row.update(time=T0, stage_time=T0 + timedelta(milliseconds=after_ms), stage=stage, audit_id=audit_id)
    row.update({"response_code": code, "verb": "watch", "user": "jane", "resource": "pods", **values})
    return tuple(row[name] for name in STAGE_COLUMNS)


def test_stages_merge_into_one_request_with_latency_and_final_code() -> None:
    merged = merge(
        [
            _stage("a", "ResponseComplete", 9000, 200),
            _stage("a", "RequestReceived", 0, None, name=None),
            _stage("a", "ResponseStarted", 3, 200, name="web"),
            _stage("b", "ResponseComplete", 5, 403),
        ]
    )
    assert [row.audit_id for row in merged] == ["a", "b"]
    first = merged[0]
    assert first.stage_names == "RR+RS+RC" and first.code == 200 and first.name == "web"
    assert first.latency == timedelta(seconds=9) and not first.failed
    assert merged[1].failed and merged[1].stage_names == "RC"


def test_a_non_resource_request_is_shown_by_its_uri() -> None:
    (row,) = merge([_stage("c", "ResponseComplete", 1, 200, resource=None, request_uri="/version")])
    assert row.object_ref == "/version"
