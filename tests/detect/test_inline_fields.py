"""Inline field reads in generated rule functions equal the accessors where parts of the event are absent."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrail.detect.codegen import INLINE_CALLS, INLINE_FIELDS
from kubetrail.detect.fields import accessor_for
from tests.detect.helpers import REMOVE, context


@pytest.mark.parametrize(
    "changes",
    [
        {"objectRef": REMOVE, "responseStatus": REMOVE, "sourceIPs": []},
        {"objectRef": {"resource": "pods", "subresource": "", "namespace": ""}, "responseStatus": {"metadata": {}}},
        {"objectRef": {"resource": "pods", "subresource": "exec", "name": "web"}, "responseStatus": {"code": 403}},
        {"sourceIPs": ["", "10.0.0.1"]},
        {"stage": "Panic", "responseStatus": REMOVE, "sourceIPs": ["gce-internal-ip"], "userAgent": ""},
        {"responseStatus": {"metadata": {}, "code": 500}, "sourceIPs": ["203.0.113.9"]},
        {"responseStatus": {"metadata": {}, "code": 101}, "userAgent": "curl/8.5.0"},
        {"responseStatus": {"metadata": {}, "code": 401}, "user": {}},
    ],
)
def test_inline_reads_equal_the_accessors_on_partial_events(changes: dict[str, Any]) -> None:
    ctx = context(**changes)
    for field, expression in INLINE_FIELDS.items():
        name, _, rest = field.partition("[")
        expected = accessor_for(name, rest[:-1] if rest else None)(ctx)
        assert eval(expression, {"e": ctx.event}) == expected, field
    for field, (function, template) in INLINE_CALLS.items():
        expected = accessor_for(field, None)(ctx)
        assert eval(template.format(f="f"), {"e": ctx.event, "f": function}) == expected, field
