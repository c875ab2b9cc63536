"""`intake.eks.decode_firehose`: Amazon Data Firehose HTTP endpoint delivery request bodies."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from kubetrail.intake import InflateLimitError, IntakeError, NotJsonError
from kubetrail.intake.eks import decode_firehose
from tests.serve.helpers import audit_event


def record(payload: bytes, *, zipped: bool = True) -> dict[str, str]:
    return {"data": base64.b64encode(gzip.compress(payload) if zipped else payload).decode()}


def delivery(group: str, numbers: range) -> bytes:
    events = [{"id": str(n), "timestamp": n, "message": json.dumps(audit_event(n))} for n in numbers]
    return json.dumps(
        {"messageType": "DATA_MESSAGE", "logGroup": group, "logStream": "s", "logEvents": events}
    ).encode()


def body(*records: dict[str, str]) -> bytes:
    return json.dumps({"requestId": "r-1", "timestamp": 1714557601599, "records": list(records)}).encode()


def test_records_become_batches_per_cluster_and_bad_records_cost_only_themselves() -> None:
    request = decode_firehose(
        body(
            record(delivery("/aws/eks/a/cluster", range(3))),
            {"data": "%%%"},
            record(delivery("/aws/eks/b/cluster", range(2))),
        ),
        source="t",
        max_bytes=1 << 20,
    )
    assert (request.request_id, request.timestamp) == ("r-1", 1714557601599)
    by_cluster = {batch.cluster: batch for batch in request.batches}
    assert len(by_cluster["a"].events) == 3 and len(by_cluster["b"].events) == 2
    (refused,) = by_cluster[None].rejected
    assert refused.line == 2 and "not base64" in refused.reason


def test_a_record_holding_more_records_is_refused() -> None:
    text = json.dumps({"messageType": "DATA_MESSAGE", "records": [record(delivery("/aws/eks/a/cluster", range(1)))]})
    inner = text.encode()
    request = decode_firehose(body(record(inner)), source="t", max_bytes=1 << 20)
    assert not any(batch.events for batch in request.batches)
    assert "do not nest" in request.batches[0].rejected[0].reason


def test_the_records_together_may_not_inflate_past_the_limit() -> None:
    each = record(b" " * 40_000 + delivery("/aws/eks/a/cluster", range(1)))
    assert decode_firehose(body(each), source="t", max_bytes=100_000).batches
    with pytest.raises(InflateLimitError):
        decode_firehose(body(each, each, each), source="t", max_bytes=100_000)


@pytest.mark.parametrize(
    ("data", "error"), [(b"{", NotJsonError), (b'{"records": []}', IntakeError), (b'{"requestId": "x"}', IntakeError)]
)
def test_what_is_not_a_delivery_request(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_firehose(data, source="t", max_bytes=1 << 20)
