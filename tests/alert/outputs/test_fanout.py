from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest

from kubetrail.alert.outputs import Outputs, Route, TokenBucket, parse_rate
from kubetrail.alert.outputs.base import OutputError
from kubetrail.detect.alert import Alert
from kubetrail.detect.priority import Priority
from tests.alert.helpers import make_alert


class Collect:
    def __init__(self, name: str = "collect") -> None:
        self.name = name
        self.alerts: list[Alert] = []
        self.closed = False

    def send(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)

    def close(self) -> None:
        self.closed = True


class Broken:
    name = "broken"

    def send(self, alerts: Sequence[Alert]) -> None:
        raise OutputError("the peer is down", output=self.name)

    def close(self) -> None:
        pass


class Stuck:
    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def send(self, alerts: Sequence[Alert]) -> None:
        self.release.wait(10)

    def close(self) -> None:
        pass


def test_min_priority_keeps_that_priority_and_more_severe() -> None:
    target = Collect()
    outputs = Outputs([Route(target, Priority.WARNING)])
    alerts = [make_alert(priority=p) for p in (Priority.CRITICAL, Priority.WARNING, Priority.NOTICE, Priority.DEBUG)]
    outputs.send(alerts)
    outputs.close()
    assert [a.priority for a in target.alerts] == [Priority.CRITICAL, Priority.WARNING]
    stats = outputs.stats()["collect"]
    assert (stats.sent, stats.below_min_priority, stats.lost) == (2, 2, 0)
    assert target.closed


def test_a_failing_output_does_not_stop_the_others_and_is_counted() -> None:
    good = Collect()
    outputs = Outputs([Route(Broken()), Route(good)])
    for index in range(3):
        outputs.send([make_alert(audit_id=str(index))])
    assert outputs.flush(10)
    assert [a.audit_id for a in good.alerts] == ["0", "1", "2"]
    assert outputs.stats()["broken"].failed == 3
    assert outputs.stats()["broken"].sent == 0
    outputs.close()


def test_rate_limited_alerts_are_counted_not_silently_dropped() -> None:
    target = Collect()
    outputs = Outputs([Route(target, bucket=TokenBucket(parse_rate("3/h")))])
    outputs.send([make_alert(audit_id=str(i)) for i in range(10)])
    outputs.close()
    assert len(target.alerts) == 3
    stats = outputs.stats()["collect"]
    assert (stats.sent, stats.rate_limited, stats.lost) == (3, 7, 7)


def test_a_stuck_output_fills_only_its_own_queue() -> None:
    stuck = Stuck()
    fast = Collect()
    outputs = Outputs([Route(stuck, queue_batches=2), Route(fast)])
    for index in range(6):
        outputs.send([make_alert(audit_id=str(index))])
    assert outputs.flush(0.2) is False  # the stuck one has not finished
    stats = outputs.stats()["stuck"]
    # one batch taken by the worker, two queued, the rest refused
    assert stats.queue_full >= 3
    stuck.release.set()
    outputs.close()
    assert len(fast.alerts) == 6
    assert stats.sent + stats.queue_full == 6


def test_blocking_outputs_wait_instead_of_dropping() -> None:
    stuck = Stuck()
    outputs = Outputs([Route(stuck, queue_batches=1)], block=True)
    sender = threading.Thread(target=lambda: [outputs.send([make_alert(audit_id=str(i))]) for i in range(5)])
    sender.start()
    sender.join(0.3)
    assert sender.is_alive()  # waiting for room, not dropping
    stuck.release.set()
    sender.join(10)
    outputs.close()
    stats = outputs.stats()["stuck"]
    assert (stats.sent, stats.queue_full) == (5, 0)
    assert outputs.summary() == [
        "output stuck: 5 sent, 0 below min_priority, 0 rate limited, 0 dropped (queue full), 0 failed"
    ]


def test_losses_are_logged_not_only_counted(caplog: pytest.LogCaptureFixture) -> None:
    outputs = Outputs([Route(Collect(), bucket=TokenBucket(parse_rate("1/h"))), Route(Broken())])
    with caplog.at_level(logging.WARNING, logger="kubetrail.alert.outputs.fanout"):
        outputs.send([make_alert(), make_alert()])
        outputs.close()
    messages = [record.getMessage() for record in caplog.records]
    assert "output collect: rate limit reached, dropped 1 alerts" in messages
    assert any(m.startswith("output broken: could not deliver 2 alerts") for m in messages)
