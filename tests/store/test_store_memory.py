"""Unsealed events are held in memory only up to a bound: sealing keeps up, or appends wait (or are refused)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubetrail.store import NotDurableError, Store, StoreOptions
from tests.store.factory import make_events


def test_blocking_appends_wait_for_sealing_and_memory_stays_bounded(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s", StoreOptions(max_unsealed_events=1_000, segment_events=400))
    try:
        for start in range(0, 6_000, 200):
            assert store.append("prod", make_events(start, 200)).accepted == 200
            assert store.stats().tail_rows <= 1_000
    finally:
        store.close()
    read = Store.open(tmp_path / "s", read_only=True)
    try:
        assert read.query_connection().execute("SELECT count(*) FROM events").fetchone() == (6_000,)
    finally:
        read.close(seal=False)


def test_an_event_loop_append_is_refused_rather_than_waiting(tmp_path: Path) -> None:
    store = Store.open(
        tmp_path / "s", StoreOptions(max_unsealed_events=500, background_seal=False, segment_events=10**9)
    )
    try:
        store.append("prod", make_events(0, 500))
        with pytest.raises(NotDurableError, match="wait to be sealed"):
            asyncio.run(store.append_async("prod", make_events(500, 10)))
        assert store.stats().tail_rows == 500
        assert store.append("prod", make_events(500, 10)).accepted == 10  # a blocking append seals to make room
    finally:
        store.close()
