from __future__ import annotations

import json

from kubetrail.alert.outputs import SlackOutput, slack_payload
from kubetrail.detect.priority import Priority
from tests.alert.helpers import make_alert
from tests.alert.outputs.httpserver import Recorder, serving


def test_payload_has_slack_text_and_one_coloured_attachment() -> None:
    payload = json.loads(slack_payload(make_alert(priority=Priority.CRITICAL)))
    assert set(payload) == {"text", "attachments"}
    assert payload["text"].startswith("*Critical* Attach/Exec Pod: Attach/Exec to pod")
    (attachment,) = payload["attachments"]
    assert attachment["color"].startswith("#")
    titles = {field["title"]: field["value"] for field in attachment["fields"]}
    assert titles["rule"] == "Attach/Exec Pod"
    assert titles["cluster"] == "prod"
    assert titles["ka.user.name"] == "alice"
    assert titles["ka.uri.param[command]"] == "<NA>"
    assert attachment["fallback"].endswith(make_alert().message)


def test_priorities_get_different_colours() -> None:
    colours = {json.loads(slack_payload(make_alert(priority=p)))["attachments"][0]["color"] for p in Priority}
    assert len(colours) == len(Priority)


def test_posts_to_the_incoming_webhook_and_retries() -> None:
    with serving(Recorder(fail_first=1, fail_status=500), "/services/T/B/X") as peer:
        output = SlackOutput(peer.url, backoff=0.001)
        output.send([make_alert()])
        output.close()
    assert peer.attempts == 2
    assert json.loads(peer.bodies[0])["attachments"][0]["fields"][0]["value"] == "Attach/Exec Pod"
