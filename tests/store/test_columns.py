"""Column extraction follows the audit.k8s.io/v1 field meanings."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from kubetrail.model import Event, Stage, decode_event
from kubetrail.store.columns import build_rows, dedup_key
from kubetrail.store.views import flatten
from tests.store.factory import make_event

V1BETA1 = (
    b'{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2019-01-01T00:00:00Z"},'
    b'"level":"Metadata","timestamp":"2019-01-01T00:00:00Z","auditID":"a1","stage":"ResponseComplete",'
    b'"requestURI":"/healthz","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":["1.2.3.4"],'
    b'"responseStatus":{"metadata":{},"code":403},'
    b'"requestReceivedTimestamp":"2019-01-01T00:00:00.000001Z","stageTimestamp":"2019-01-01T00:00:00.000200Z"}'
)


def _row(raw: bytes, *, keep_raw: bool = True) -> dict[str, object]:
    return _flat([decode_event(raw)], [raw] if keep_raw else None)


def _flat(events: list[Event], raws: list[bytes | None] | None = None) -> dict[str, object]:
    rows = build_rows("prod", events, raws)
    flat: list[dict[str, object]] = flatten(pa.Table.from_batches([rows.record_batch()])).to_pylist()
    return flat[0]


def test_resource_request_columns() -> None:
    event = make_event(7, verb="delete", resource="secrets", namespace="kube-system", code=200)
    row = _flat([event])
    assert row["verb"] == "delete"
    assert (row["resource"], row["namespace"], row["name"], row["api_group"], row["api_version"]) == (
        "secrets",
        "kube-system",
        "pod-7",
        None,
        "v1",
    )
    assert row["authz_decision"] == "allow"
    assert row["groups"] == ["system:authenticated"]
    assert row["cluster"] == "prod"
    assert row["date"].isoformat() == "2026-03-19"


def test_non_resource_request_has_no_object_columns_and_v1beta1_is_stored_as_v1() -> None:
    row = _row(V1BETA1)
    assert row["resource"] is None and row["namespace"] is None
    assert row["request_uri"] == "/healthz"
    assert row["response_code"] == 403
    assert row["time"] == datetime(2019, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert row["stage_time"] == datetime(2019, 1, 1, 0, 0, 0, 200, tzinfo=UTC)
    assert '"apiVersion":"audit.k8s.io/v1"' in str(row["event"])
    assert "v1beta1" not in str(row["event"])


def test_unknown_top_level_fields_survive_in_the_stored_json() -> None:
    raw_line = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete",'
        b'"requestURI":"/api","verb":"get","user":{"username":"u"},"futureField":{"a":1},'
        b'"requestReceivedTimestamp":"2026-01-02T03:04:05.000006Z"}'
    )
    row = _row(raw_line)
    assert '"futureField":{"a":1}' in str(row["event"])


def test_time_falls_back_to_the_stage_timestamp_and_offsets_become_utc() -> None:
    raw = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"x","stage":"ResponseComplete",'
        b'"requestURI":"/api","verb":"get","user":{"username":"u"},"stageTimestamp":"2026-01-02T01:30:00.5+02:00"}'
    )
    row = _row(raw)
    assert row["time"] == datetime(2026, 1, 1, 23, 30, 0, 500000, tzinfo=UTC)
    assert row["date"].isoformat() == "2026-01-01"


def test_dedup_key_separates_stage_and_cluster() -> None:
    keys = {
        dedup_key("prod", "id-1", str(Stage.REQUEST_RECEIVED), b""),
        dedup_key("prod", "id-1", str(Stage.RESPONSE_COMPLETE), b""),
        dedup_key("dev", "id-1", str(Stage.RESPONSE_COMPLETE), b""),
    }
    assert len(keys) == 3
    assert dedup_key("prod", "id-1", "ResponseComplete", b"a") == dedup_key("prod", "id-1", "ResponseComplete", b"b")
    assert dedup_key("prod", "", "ResponseComplete", b"a") != dedup_key("prod", "", "ResponseComplete", b"b")
