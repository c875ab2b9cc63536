from __future__ import annotations

import json
import logging

import pytest

from kubetrail.alert.outputs import OutputError, WebhookOutput
from kubetrail.alert.outputs.webhook import safe_url
from tests.alert.helpers import make_alert
from tests.alert.outputs.httpserver import Recorder, serving


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_posts_one_falco_json_alert_per_request() -> None:
    with serving(Recorder()) as peer:
        output = WebhookOutput(peer.url, headers={"Authorization": "Bearer s3cret"})
        output.send([make_alert(audit_id="1"), make_alert(audit_id="2")])
        output.close()
    assert [json.loads(body)["auditID"] for body in peer.bodies] == ["1", "2"]
    assert peer.headers[0]["content-type"] == "application/json"
    assert peer.headers[0]["authorization"] == "Bearer s3cret"
    assert json.loads(peer.bodies[0])["rule"] == "Attach/Exec Pod"


def test_retries_server_errors_with_exponential_backoff() -> None:
    sleeps = Sleeps()
    with serving(Recorder(fail_first=3, fail_status=503)) as peer:
        output = WebhookOutput(peer.url, retries=3, backoff=0.01, sleep=sleeps)
        output.send([make_alert()])
        output.close()
    assert peer.attempts == 4
    assert len(peer.bodies) == 1
    assert sleeps == [0.01, 0.02, 0.04]


def test_honours_a_short_retry_after() -> None:
    sleeps = Sleeps()
    with serving(Recorder(fail_first=1, fail_status=429, retry_after="2")) as peer:
        output = WebhookOutput(peer.url, retries=1, backoff=0.01, max_backoff=5, sleep=sleeps)
        output.send([make_alert()])
        output.close()
    assert sleeps == [2.0]
    assert len(peer.bodies) == 1


def test_gives_up_after_the_retries() -> None:
    with serving(Recorder(fail_first=10, fail_status=500)) as peer:
        output = WebhookOutput(peer.url, retries=2, backoff=0.001)
        with pytest.raises(OutputError, match="gave up after 3 attempts: HTTP 500"):
            output.send([make_alert()])
        output.close()
    assert peer.attempts == 3


def test_a_client_error_is_not_retried() -> None:
    with serving(Recorder(fail_first=10, fail_status=404)) as peer:
        output = WebhookOutput(peer.url, retries=3, backoff=0.001)
        with pytest.raises(OutputError, match="HTTP 404"):
            output.send([make_alert()])
        output.close()
    assert peer.attempts == 1


def test_connection_refused_is_retried_then_reported_without_the_secret_path() -> None:
    with serving(Recorder()) as peer:
        url = peer.url.replace("/hook", "/services/T000/B000/XXXXSECRET")
    output = WebhookOutput(url, retries=1, backoff=0.001, timeout=1)
    with pytest.raises(OutputError) as caught:
        output.send([make_alert()])
    output.close()
    assert "SECRET" not in str(caught.value)
    assert output.attempts == 2


def test_safe_url_drops_credentials_path_and_query() -> None:
    assert safe_url("https://user:pw@hooks.slack.com/services/T/B/X?token=1") == "https://hooks.slack.com"


def test_refuses_a_url_that_is_not_http() -> None:
    with pytest.raises(OutputError, match="http"):
        WebhookOutput("ftp://example.com/x")


def test_the_secret_url_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), serving(Recorder(fail_first=1), "/services/T0/B0/SECRETTOKEN") as peer:
        output = WebhookOutput(peer.url, retries=1, backoff=0.001)
        output.send([make_alert()])
        output.close()
    assert peer.attempts == 2
    assert not [record for record in caplog.records if "SECRETTOKEN" in record.getMessage()]
