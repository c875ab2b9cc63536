"""Every source's shape through the intake: the events it holds, the records it skips, its cluster, its bytes."""

from __future__ import annotations

import json

import pytest

from kubetrail.intake import read_bytes, sniff
from tests.intake.shapes import Shape, native_events, shapes

SHAPES = {shape.name: shape for shape in shapes()}


@pytest.mark.parametrize("name", SHAPES)
def test_each_shape_yields_its_events_and_skips_what_is_not_audit(name: str) -> None:
    shape: Shape = SHAPES[name]
    batches = list(read_bytes(shape.data, source=name))
    assert [item for batch in batches for item in batch.rejected] == []
    assert sum(len(batch.events) for batch in batches) == shape.events
    assert sum(sum(batch.skipped.values()) for batch in batches) == shape.skipped
    assert {batch.cluster for batch in batches if batch.events} == {shape.cluster}


@pytest.mark.parametrize("name", [name for name in SHAPES if name.startswith(("eks-", "aks-", "native-"))])
def test_the_apiservers_own_json_is_kept(name: str) -> None:
    """EKS and AKS carry the apiserver's Event JSON unchanged (user.extra ARNs included): nothing is lost."""
    originals = {(event["auditID"], event["stage"]): event for event in native_events()}
    for batch in read_bytes(SHAPES[name].data, source=name):
        for event, raw in zip(batch.events, batch.raws, strict=True):
            assert raw is not None
            assert json.loads(raw) == originals[(event.auditID, str(event.stage))]


def test_each_shape_is_told_apart_by_its_first_bytes() -> None:
    for name, shape in SHAPES.items():
        if shape.data[:2] == b"\x1f\x8b":
            continue
        assert sniff(shape.data[:65536]) == name.split("-", 1)[0].replace("native", "k8s"), name
