"""The policy simulation page against a real `serve`: it replays the stored events through a preset."""

from __future__ import annotations

import json
import re

import httpx

from kubetrail.model import decode_event
from kubetrail.policy.evaluate import compile_policy
from kubetrail.policy.presets import PRESETS, load_preset
from kubetrail.policy.record import record
from kubetrail.ui.policy_view import SAMPLE_EVENTS
from tests.ui.conftest import UIServer

WRITTEN = re.compile(r'id="written-events">(\d+)<')


def _written(server: UIServer, preset: str) -> int:
    page = httpx.get(f"{server.url}/ui/policy", params={"preset": preset}, timeout=60)
    assert page.status_code == 200
    assert page.text.count('class="policy-rule"') == len(load_preset(preset).policy.rules) + 1
    found = WRITTEN.search(page.text)
    assert found, page.text[:2000]
    return int(found.group(1))


def test_every_preset_counts_what_the_apiserver_would_write(ui_server: UIServer) -> None:
    events = sorted(ui_server.events, key=lambda event: str(event.get("stageTimestamp")))[-SAMPLE_EVENTS:]
    decoded = [decode_event(json.dumps(event).encode()) for event in events]
    for preset in PRESETS:
        evaluate = compile_policy(load_preset(preset).policy).evaluate_event
        expected = sum(record(event, evaluate(event)) is not None for event in decoded)
        assert _written(ui_server, preset) == expected, preset


def test_an_unknown_preset_is_a_clear_400(ui_server: UIServer) -> None:
    page = httpx.get(f"{ui_server.url}/ui/policy", params={"preset": "<script>"}, timeout=30)
    assert page.status_code == 400 and "<script>" not in page.text and "choose from" in page.text
