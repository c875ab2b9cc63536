"""The apiserver's webhook back-off: wait.Backoff with factor 1.5, jitter 0.2, 5 steps."""

from __future__ import annotations

import pytest

from kubetrail.emit.retry import Backoff, retry_on_error, webhook_backoff, with_exponential_backoff


def test_webhook_backoff_sleeps_grow_by_half_from_the_initial_backoff() -> None:
    backoff = webhook_backoff(10.0)
    assert list(backoff.delays(lambda: 0.0)) == [10.0, 15.0, 22.5, 33.75]
    assert list(backoff.delays(lambda: 1.0)) == pytest.approx([12.0, 18.0, 27.0, 40.5])
    assert backoff.window() == pytest.approx((81.25, 97.5))


def test_jitter_is_added_per_step_and_never_compounds() -> None:
    draws = iter([0.5, 0.0, 0.25, 1.0])
    assert list(webhook_backoff(2.0).delays(lambda: next(draws))) == pytest.approx([2.2, 3.0, 4.725, 8.1])


def test_attempts_stop_after_steps_and_return_the_last_error() -> None:
    sleeps: list[float] = []
    calls: list[int] = []

    def attempt() -> Exception | None:
        calls.append(1)
        return RuntimeError(f"failure {len(calls)}")

    error = with_exponential_backoff(attempt, webhook_backoff(10.0), sleep=sleeps.append, rand=lambda: 0.0)
    assert len(calls) == 5
    assert sleeps == [10.0, 15.0, 22.5, 33.75]
    assert str(error) == "failure 5"


def test_success_stops_retrying() -> None:
    outcomes: list[Exception | None] = [RuntimeError("down"), RuntimeError("down"), None]
    sleeps: list[float] = []
    error = with_exponential_backoff(lambda: outcomes.pop(0), webhook_backoff(1.0), sleep=sleeps.append, rand=lambda: 0)
    assert error is None
    assert sleeps == [1.0, 1.5]


def test_non_retriable_error_returns_at_once() -> None:
    sleeps: list[float] = []
    error = with_exponential_backoff(
        lambda: ValueError("bad"),
        webhook_backoff(),
        should_retry=lambda e: not isinstance(e, ValueError),
        sleep=sleeps.append,
    )
    assert isinstance(error, ValueError)
    assert sleeps == []


def test_audit_webhook_retries_every_error() -> None:
    assert retry_on_error(RuntimeError("400 Bad Request")) is True
    assert retry_on_error(None) is False


def test_cap_ends_the_attempts_after_the_capped_sleep() -> None:
    # wait.ExponentialBackoff: a sleep truncated by the cap is the last thing done.
    calls: list[int] = []
    sleeps: list[float] = []
    backoff = Backoff(duration=1.0, factor=2.0, jitter=0.0, steps=10, cap=3.0)

    def attempt() -> Exception | None:
        calls.append(1)
        return RuntimeError("down")

    with_exponential_backoff(attempt, backoff, sleep=sleeps.append)
    assert sleeps == [1.0, 2.0]
    assert len(calls) == 2


def test_one_step_means_one_attempt_and_no_sleep() -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    with_exponential_backoff(
        lambda: calls.append(1) or RuntimeError("x"), Backoff(duration=5, steps=1), sleep=sleeps.append
    )
    assert (len(calls), sleeps) == (1, [])
