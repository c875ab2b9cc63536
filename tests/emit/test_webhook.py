"""The webhook backend against real HTTP(S) receivers on loopback: body, retries, statuses, TLS, auth."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.kubeconfig import WebhookClientConfig, load_kubeconfig, parse_kubeconfig
from kubetrail.emit.options import IgnoreErrors
from kubetrail.emit.throttle import TokenBucket
from kubetrail.emit.truncate import TruncateConfig
from kubetrail.emit.webhook import WebhookBackend, WebhookError, new_webhook_backend
from kubetrail.model.event import Event, Level, ObjectReference, Stage, UserInfo

from .helpers_http import LiveServer, Receiver, Reply, Tls, free_port, make_tls, serving


def event(n: int, stage: Stage = Stage.RESPONSE_COMPLETE) -> Event:
    return Event(
        level=Level.METADATA,
        auditID=f"00000000-0000-0000-0000-{n:012d}",
        stage=stage,
        requestURI="/api/v1/namespaces/default/pods",
        verb="list",
        user=UserInfo(username="alice", groups=["system:authenticated"]),
        objectRef=ObjectReference(resource="pods", namespace="default", apiVersion="v1"),
        requestReceivedTimestamp="2026-03-19T10:30:00.000000Z",
        stageTimestamp="2026-03-19T10:30:00.050000Z",
    )


def http_config(url: str, **user: object) -> WebhookClientConfig:
    return parse_kubeconfig(
        {
            "clusters": [{"name": "receiver", "cluster": {"server": url}}],
            "users": [{"name": "apiserver", "user": user}],
            "contexts": [{"name": "webhook", "context": {"cluster": "receiver", "user": "apiserver"}}],
            "current-context": "webhook",
        }
    )


class Sleeps(list[float]):
    """An injected sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[tuple[Receiver, LiveServer]]:
    receiver = Receiver()
    with serving(receiver.app) as live:
        yield receiver, live


@pytest.fixture
def receiver(shared_receiver: tuple[Receiver, LiveServer]) -> Receiver:
    shared_receiver[0].reset()
    return shared_receiver[0]


@pytest.fixture
def server(shared_receiver: tuple[Receiver, LiveServer], receiver: Receiver) -> LiveServer:
    return shared_receiver[1]


def backend(url: str, sleeps: Sleeps, **options: object) -> WebhookBackend:
    return WebhookBackend(http_config(url), sleep=sleeps, rand=lambda: 0.0, **options)  # type: ignore[arg-type]


def test_posts_one_v1_event_list_per_call(receiver: Receiver, server: LiveServer) -> None:
    hook = backend(server.url, Sleeps())
    assert isinstance(hook, Backend)
    assert hook.process_events([event(1), event(2, Stage.REQUEST_RECEIVED)]) is True
    hook.shutdown()
    assert receiver.posts == 1
    headers, body = receiver.requests[0]
    assert headers["content-type"] == "application/json"
    document = json.loads(body)
    assert document["kind"] == "EventList"
    assert document["apiVersion"] == "audit.k8s.io/v1"
    assert [item["auditID"] for item in document["items"]] == [event(1).auditID, event(2).auditID]
    assert document["items"][1]["stage"] == "RequestReceived"
    assert all(item["kind"] == "Event" and item["apiVersion"] == "audit.k8s.io/v1" for item in document["items"])
    assert hook.stats.sent_events == 2 and hook.stats.failed_events == 0
    assert "authorization" not in headers


def test_empty_batch_posts_nothing(receiver: Receiver, server: LiveServer) -> None:
    assert backend(server.url, Sleeps()).process_events([]) is True
    assert receiver.posts == 0


def test_bearer_token_is_sent(receiver: Receiver, tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    with serving(receiver.app, tls=tls, require_client_cert=False) as live:
        config = parse_kubeconfig(
            {
                "clusters": [{"name": "c", "cluster": {"server": live.url, "certificate-authority": str(tls.ca_cert)}}],
                "users": [{"name": "u", "user": {"token": "abc123"}}],
                "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "w",
            }
        )
        hook = WebhookBackend(config)
        assert hook.process_events([event(1)])
        hook.shutdown()
    assert receiver.requests[0][0]["authorization"] == "Bearer abc123"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 206])
def test_success_statuses_are_not_retried(receiver: Receiver, server: LiveServer, status: int) -> None:
    receiver.answer(status)
    sleeps = Sleeps()
    assert backend(server.url, sleeps).process_events([event(1)]) is True
    assert receiver.posts == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500, 502, 503, 504])
def test_every_failure_status_is_retried_with_backoff(receiver: Receiver, server: LiveServer, status: int) -> None:
    # The audit webhook overrides the generic webhook's rule: any error is retried.
    receiver.answer(status)
    sleeps = Sleeps()
    hook = backend(server.url, sleeps)
    assert hook.process_events([event(1)]) is True
    assert receiver.posts == 2
    assert sleeps == [10.0]
    assert receiver.items()[0]["auditID"] == event(1).auditID
    assert hook.stats.retries == 1


def test_gives_up_after_five_attempts_counts_and_logs(
    receiver: Receiver, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer(*[Reply(500, body=b"disk full")] * 5)
    sleeps = Sleeps()
    hook = backend(server.url, sleeps)
    with caplog.at_level(logging.ERROR, logger="kubetrail.emit"):
        assert hook.process_events([event(1), event(2)]) is False
    assert receiver.posts == 5
    assert sleeps == [10.0, 15.0, 22.5, 33.75]
    assert hook.stats.failed_events == 2 and hook.stats.failed_batches == 1 and hook.stats.sent_events == 0
    message = caplog.records[-1].getMessage()
    assert "affecting 2 audit events" in message
    assert event(1).auditID in message and event(2).auditID in message
    assert "500" in message and "disk full" in message


def test_jitter_and_initial_backoff_are_the_flags(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(500, 500)
    sleeps = Sleeps()
    hook = WebhookBackend(http_config(server.url), initial_backoff=2.0, sleep=sleeps, rand=lambda: 0.5)
    assert hook.process_events([event(1)])
    assert sleeps == pytest.approx([2.2, 3.3])


def test_no_event_lost_when_the_receiver_comes_back_within_the_retry_window(receiver: Receiver) -> None:
    port = free_port()
    live = LiveServer(receiver.app, port=port)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # down for the first three attempts (10 + 15 + 22.5 s), back for the fourth
            live.start()

    hook = WebhookBackend(http_config(live.url), sleep=sleep, rand=lambda: 0.0)
    try:
        assert hook.process_events([event(n) for n in range(7)]) is True
    finally:
        live.stop()
    assert sleeps == [10.0, 15.0, 22.5]
    assert [item["auditID"] for item in receiver.items()] == [event(n).auditID for n in range(7)]
    assert receiver.posts == 1


def test_receiver_down_longer_than_the_window_loses_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/audit"
    sleeps = Sleeps()
    hook = backend(url, sleeps)
    with caplog.at_level(logging.ERROR, logger="kubetrail.emit"):
        assert hook.process_events([event(1)]) is False
    assert len(sleeps) == 4
    assert hook.stats.failed_events == 1
    assert "127.0.0.1" in caplog.records[-1].getMessage()


def test_retry_after_on_429_and_5xx_is_honoured_within_one_attempt(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(Reply(429, {"Retry-After": "3"}), Reply(503, {"Retry-After": "1"}))
    sleeps = Sleeps()
    hook = backend(server.url, sleeps)
    assert hook.process_events([event(1)])
    assert receiver.posts == 3
    assert sleeps == [3.0, 1.0]  # client-go's Retry-After waits, no back-off step used
    assert hook.stats.retries == 0


def test_retry_after_is_ignored_on_4xx_other_than_429(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(Reply(400, {"Retry-After": "3"}))
    sleeps = Sleeps()
    assert backend(server.url, sleeps).process_events([event(1)])
    assert sleeps == [10.0]


def test_retry_after_retries_are_capped_at_ten_per_attempt(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(*[Reply(503, {"Retry-After": "0"})] * 11)
    sleeps = Sleeps()
    assert backend(server.url, sleeps).process_events([event(1)])
    assert receiver.posts == 12  # 1 + 10 Retry-After retries, then one back-off retry that succeeds
    assert sleeps == [0.0] * 10 + [10.0]


def test_request_timeout_is_an_error_that_is_retried(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(Reply(200, delay=1.0))
    sleeps = Sleeps()
    hook = backend(server.url, sleeps, timeout=0.2)
    assert hook.process_events([event(1)])
    assert sleeps == [10.0]
    assert receiver.posts == 2


def test_blocking_mode_ignores_failures_strict_reports_them(receiver: Receiver, server: LiveServer) -> None:
    receiver.answer(*[500] * 10)
    strict = backend(server.url, Sleeps())
    lenient = IgnoreErrors(backend(server.url, Sleeps()))
    assert strict.process_events([event(1)]) is False
    assert lenient.process_events([event(2)]) is True
    assert lenient.name() == "ignoreErrors<webhook>"
    assert isinstance(lenient.delegate, WebhookBackend) and lenient.delegate.stats.failed_events == 1


def write_kubeconfig(directory: Path, server: str, *, ca: str, cert: str | None, key: str | None) -> Path:
    user = "" if cert is None else f"\n      client-certificate: {cert}\n      client-key: {key}"
    path = directory / "webhook.yaml"
    path.write_text(
        f"""\
clusters:
  - name: kubetrail
    cluster:
      certificate-authority: {ca}
      server: {server}
users:
  - name: kube-apiserver
    user:{user or " {}"}
current-context: webhook
contexts:
- context:
    cluster: kubetrail
    user: kube-apiserver
  name: webhook
"""
    )
    return path


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path / "pki")


def test_tls_with_custom_ca_and_client_certificate(receiver: Receiver, tls: Tls) -> None:
    with serving(receiver.app, tls=tls) as live:
        # Relative paths in the kubeconfig resolve against its own directory.
        config = load_kubeconfig(
            write_kubeconfig(tls.directory, live.url, ca="ca.pem", cert="client.pem", key="client-key.pem")
        )
        hook = WebhookBackend(config, sleep=Sleeps())
        assert hook.process_events([event(1)]) is True
        hook.shutdown()
    assert receiver.items()[0]["auditID"] == event(1).auditID


def test_tls_without_client_certificate_is_refused(receiver: Receiver, tls: Tls) -> None:
    with serving(receiver.app, tls=tls) as live:
        config = load_kubeconfig(write_kubeconfig(tls.directory, live.url, ca="ca.pem", cert=None, key=None))
        hook = WebhookBackend(config, sleep=Sleeps())
        assert hook.process_events([event(1)]) is False
    assert receiver.posts == 0


def test_tls_with_an_unknown_ca_is_refused(receiver: Receiver, tls: Tls) -> None:
    with serving(receiver.app, tls=tls) as live:
        config = load_kubeconfig(
            write_kubeconfig(tls.directory, live.url, ca="other-ca.pem", cert="client.pem", key="client-key.pem")
        )
        sleeps = Sleeps()
        hook = WebhookBackend(config, sleep=sleeps)
        error = hook.send([event(1)])
    assert isinstance(error, WebhookError)
    assert "certificate" in str(error).lower()
    assert receiver.posts == 0 and len(sleeps) == 4


def test_tls_server_name_is_checked_against_the_certificate(receiver: Receiver, tls: Tls) -> None:
    with serving(receiver.app, tls=tls) as live:
        document = {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {
                        "server": live.url,
                        "certificate-authority": str(tls.ca_cert),
                        "tls-server-name": "localhost",
                    },
                }
            ],
            "users": [
                {"name": "u", "user": {"client-certificate": str(tls.client_cert), "client-key": str(tls.client_key)}}
            ],
            "contexts": [{"name": "w", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "w",
        }
        hook = WebhookBackend(parse_kubeconfig(document), sleep=Sleeps())
        assert hook.process_events([event(1)])
        hook.shutdown()
        document["clusters"][0]["cluster"]["tls-server-name"] = "audit.example.com"  # type: ignore[index]
        assert not WebhookBackend(parse_kubeconfig(document), sleep=Sleeps()).process_events([event(2)])
    assert [item["auditID"] for item in receiver.items()] == [event(1).auditID]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_default_mode_is_batch_with_the_apiservers_defaults(server: LiveServer) -> None:
    composed = new_webhook_backend(http_config(server.url))
    assert composed.name() == "buffered<webhook>"
    assert isinstance(composed, Buffered)
    assert composed.config == BatchConfig(
        buffer_size=10_000,
        max_batch_size=400,
        max_batch_wait=30.0,
        throttle_enable=True,
        throttle_qps=10.0,
        throttle_burst=15,
        async_delegate=True,
    )
    blocking = new_webhook_backend(http_config(server.url), mode="blocking")
    strict = new_webhook_backend(http_config(server.url), mode="blocking-strict")
    truncating = new_webhook_backend(http_config(server.url), truncate=TruncateConfig())
    assert blocking.name() == "ignoreErrors<webhook>"
    assert strict.name() == "webhook"
    assert truncating.name() == "truncate<buffered<webhook>>"
    for backend_ in (composed, blocking, strict, truncating):
        backend_.shutdown()


def test_unknown_mode_is_refused_with_the_apiservers_message(server: LiveServer) -> None:
    with pytest.raises(BackendError, match='allowed modes are "batch,blocking,blocking-strict"'):
        new_webhook_backend(http_config(server.url), mode="async")


def test_batch_mode_splits_by_max_batch_size(receiver: Receiver, server: LiveServer) -> None:
    composed = new_webhook_backend(
        http_config(server.url), batch=BatchConfig(max_batch_size=3, max_batch_wait=30.0, throttle_enable=False)
    )
    composed.run()
    assert composed.process_events([event(n) for n in range(7)]) is True
    wait_for(lambda: receiver.posts >= 2)  # two full batches go out without waiting for the 30 s timer
    assert sorted(receiver.batch_sizes()) == [3, 3]
    composed.shutdown()  # flushes the partial batch
    assert sorted(receiver.batch_sizes()) == [1, 3, 3]
    assert sorted(item["auditID"] for item in receiver.items()) == [event(n).auditID for n in range(7)]


def test_batch_mode_sends_a_partial_batch_after_max_wait(receiver: Receiver, server: LiveServer) -> None:
    composed = new_webhook_backend(
        http_config(server.url), batch=BatchConfig(max_batch_size=400, max_batch_wait=0.2, throttle_enable=False)
    )
    composed.run()
    try:
        composed.process_events([event(1)])
        composed.process_events([event(2)])
        wait_for(lambda: receiver.posts == 1)
        assert receiver.batch_sizes() == [2]
    finally:
        composed.shutdown()
    assert receiver.posts == 1


def test_batch_mode_throttles_batches(receiver: Receiver, server: LiveServer) -> None:
    now = [0.0]
    throttle_sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        throttle_sleeps.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(10, 2, clock=lambda: now[0], sleep=sleep)
    composed = new_webhook_backend(
        http_config(server.url),
        batch=BatchConfig(
            max_batch_size=1, max_batch_wait=0.0, throttle_qps=10, throttle_burst=2, async_delegate=False
        ),
        throttle=bucket,
    )
    composed.run()
    composed.process_events([event(n) for n in range(5)])
    composed.shutdown()
    assert receiver.batch_sizes() == [1] * 5
    assert throttle_sleeps == pytest.approx([0.1, 0.1, 0.1])  # burst of 2, then 10 batches per second


def test_batch_mode_drops_and_counts_when_the_buffer_is_full(
    receiver: Receiver, server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    composed = new_webhook_backend(
        http_config(server.url), batch=BatchConfig(buffer_size=5, max_batch_size=400, throttle_enable=False)
    )
    assert isinstance(composed, Buffered)
    with caplog.at_level(logging.WARNING, logger="kubetrail.emit"):
        assert composed.process_events([event(n) for n in range(8)]) is True  # full buffer: drop, never fail
    assert composed.dropped == 3
    assert any("dropped 3" in record.getMessage() for record in caplog.records)
    composed.run()
    composed.shutdown()
    assert [item["auditID"] for item in receiver.items()] == [event(n).auditID for n in range(5)]


def test_shutdown_delivers_what_is_buffered(receiver: Receiver, server: LiveServer) -> None:
    composed = new_webhook_backend(http_config(server.url))  # 30 s max wait: only shutdown sends these
    composed.run()
    composed.process_events([event(n) for n in range(3)])
    composed.shutdown()
    assert sorted(item["auditID"] for item in receiver.items()) == [event(n).auditID for n in range(3)]


def test_undeliverable_events_at_shutdown_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/audit"
    sleeps = Sleeps()
    composed = new_webhook_backend(http_config(url), sleep=sleeps, rand=lambda: 0.0)
    assert isinstance(composed, Buffered) and isinstance(composed.delegate, WebhookBackend)
    composed.run()
    composed.process_events([event(n) for n in range(4)])
    with caplog.at_level(logging.ERROR, logger="kubetrail.emit"):
        composed.shutdown()
    assert composed.failed == 4
    assert composed.delegate.stats.failed_events == 4
    assert sleeps == [10.0, 15.0, 22.5, 33.75]
    assert any("affecting 4 audit events" in record.getMessage() for record in caplog.records)
