"""A hostile peer cannot flood the log: one line per kind per interval, and the next line counts what was held."""

from __future__ import annotations

import logging

import pytest

from kubetrail.logs import ThrottledLog


def test_repeats_are_held_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    quiet = ThrottledLog(logging.getLogger("kubetrail.test"), interval=0.2)
    with caplog.at_level(logging.WARNING, logger="kubetrail.test"):
        for number in range(1000):
            quiet.warning("refused", "refused %d", number)
        quiet.warning("other", "another kind")
        assert [record.getMessage() for record in caplog.records] == ["refused 0", "another kind"]
        quiet.interval = 0.0
        quiet.warning("refused", "refused %d", 1000)
    assert caplog.records[-1].getMessage() == "refused 1000 (and 999 more like it in the last 0 s)"
