"""Batch mode: batching by size and wait, throttling, drops when full, flush on shutdown."""

from __future__ import annotations

import logging

import pytest

from kubetrail.emit.backend import Backend, BackendError
from kubetrail.emit.buffered import BatchConfig, Buffered
from kubetrail.emit.throttle import TokenBucket
from tests.emit.backends import Exploding, Recording, sample_events


def test_defaults_match_the_apiserver() -> None:
    webhook = BatchConfig.for_webhook()
    assert (webhook.buffer_size, webhook.max_batch_size, webhook.max_batch_wait) == (10000, 400, 30.0)
    assert (webhook.throttle_enable, webhook.throttle_qps, webhook.throttle_burst) == (True, 10.0, 15)
    assert webhook.async_delegate
    log = BatchConfig.for_log()
    assert (log.buffer_size, log.max_batch_size, log.throttle_enable, log.async_delegate) == (10000, 1, False, False)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (BatchConfig(buffer_size=0), "invalid audit batch log buffer size 0, must be a positive number"),
        (BatchConfig(max_batch_size=-1), "invalid audit batch log max batch size -1, must be a positive number"),
        (BatchConfig(throttle_qps=0), "invalid audit batch log throttle QPS 0, must be a positive number"),
        (BatchConfig(throttle_burst=0), "invalid audit batch log throttle burst 0, must be a positive number"),
    ],
)
def test_invalid_batch_options_are_refused(config: BatchConfig, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        Buffered(Recording(), config, plugin="log")


def test_throttle_disabled_skips_its_checks() -> None:
    Buffered(Recording(), BatchConfig(throttle_enable=False, throttle_qps=0))


def test_batches_by_size_and_flushes_the_rest_on_shutdown() -> None:
    delegate = Recording()
    buffered = Buffered(delegate, BatchConfig(max_batch_size=3, max_batch_wait=60, throttle_enable=False))
    assert isinstance(buffered, Backend)
    assert buffered.name() == "buffered<recording>"
    buffered.run()
    events = sample_events(7)
    assert buffered.process_events(events)
    buffered.shutdown()
    assert [len(batch) for batch in delegate.batches] == [3, 3, 1]
    assert [event.auditID for event in delegate.events] == [event.auditID for event in events]
    assert (delegate.started, delegate.stopped) == (1, 1)


def test_a_partial_batch_is_sent_after_the_max_wait() -> None:
    delegate = Recording(expect=2)
    buffered = Buffered(delegate, BatchConfig(max_batch_size=100, max_batch_wait=0.05, throttle_enable=False))
    buffered.run()
    buffered.process_events(sample_events(2))
    assert delegate.arrived.wait(timeout=10), "the batch was not sent before shutdown"
    assert [len(batch) for batch in delegate.batches] == [2]
    buffered.shutdown()


def test_full_buffer_drops_and_counts_and_nothing_buffered_is_lost() -> None:
    delegate = Recording()
    buffered = Buffered(delegate, BatchConfig(buffer_size=5, max_batch_size=2, throttle_enable=False))
    events = sample_events(8)
    assert buffered.process_events(events[:4])
    assert buffered.process_events(events[4:])  # the apiserver's buffered backend never fails the request
    assert buffered.dropped == 3
    assert len(buffered) == 5
    buffered.shutdown()
    assert [event.auditID for event in delegate.events] == [event.auditID for event in events[:5]]
    assert delegate.stopped == 1
    assert buffered.process_events(events[:1])
    assert buffered.dropped == 4


def test_async_delegate_delivers_everything_before_shutdown_returns() -> None:
    delegate = Recording()
    buffered = Buffered(
        delegate, BatchConfig(max_batch_size=10, max_batch_wait=60, throttle_qps=1000, throttle_burst=5)
    )
    buffered.run()
    for event in sample_events(95):
        buffered.process_events([event])
    buffered.shutdown()
    assert len(delegate.events) == 95
    assert sorted(event.auditID for event in delegate.events) == sorted(e.auditID for e in sample_events(95))


def test_failing_delegate_is_counted_and_does_not_stop_the_worker() -> None:
    broken = Buffered(Exploding(), BatchConfig(max_batch_size=2, throttle_enable=False, async_delegate=False))
    broken.run()
    broken.process_events(sample_events(5))
    broken.shutdown()
    assert broken.failed == 5
    refusing = Recording(accept=False)
    buffered = Buffered(refusing, BatchConfig(max_batch_size=2, throttle_enable=False, async_delegate=False))
    buffered.process_events(sample_events(3))
    buffered.shutdown()
    assert buffered.failed == 3 and len(refusing.events) == 3


def test_throttle_paces_batches() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    delegate = Recording()
    throttle = TokenBucket(2, 1, clock=lambda: now[0], sleep=sleep)
    buffered = Buffered(delegate, BatchConfig(max_batch_size=1, async_delegate=False), throttle=throttle)
    buffered.process_events(sample_events(3))
    buffered.shutdown()
    assert len(delegate.batches) == 3
    assert slept == [0.5, 0.5]


def test_drops_are_logged_at_most_every_interval_and_summed_at_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    buffered = Buffered(Recording(), BatchConfig(buffer_size=2, throttle_enable=False))
    events = sample_events(6)
    with caplog.at_level(logging.WARNING, logger="kubetrail.emit"):
        assert buffered.process_events(events[:3])
        assert buffered.process_events(events[3:])
        reports = [record.getMessage() for record in caplog.records]
        assert len(reports) == 1 and "dropped 1 event(s)" in reports[0]
        buffered.shutdown()
    assert buffered.dropped == 4
    assert "3 audit event(s) dropped since the last report" in caplog.records[-1].getMessage()
