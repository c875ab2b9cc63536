"""The bounded key store: LRU eviction counted, expiry in event-time order."""

from __future__ import annotations

from kubetrail.detect.stateful import FirstSeenSpec, StatefulDetector, ThresholdSpec
from kubetrail.detect.stateful.store import KeyStore
from tests.detect.stateful.events import at


def test_least_recently_used_key_is_evicted_and_counted() -> None:
    store: KeyStore[int] = KeyStore(2)
    store.touch("a", 1, lambda: 1)
    store.touch("b", 2, lambda: 2)
    store.touch("a", 3, lambda: 0)
    store.touch("c", 4, lambda: 3)
    assert store.get("b") is None
    assert store.get("a") == 1
    assert store.evictions == 1
    assert len(store) == 2


def test_expiry_drops_idle_keys_only() -> None:
    store: KeyStore[int] = KeyStore(10)
    for index, key in enumerate("abc"):
        store.touch(key, index * 100, lambda: 0)
    store.expire(150)
    assert [key for key, _, _ in store.items()] == ["c"]
    assert store.expired == 2
    assert store.evictions == 0


def test_detector_counts_evictions_when_keys_exceed_the_rule_limit() -> None:
    spec = FirstSeenSpec(name="users", match=lambda ctx: True, key=("ka.user.name",), baseline_s=3600, max_keys=3)
    target = StatefulDetector([spec])
    for index in range(5):
        target.detect(at(index, user=f"user{index}"))
    stats = target.stats()["users"]
    assert (stats.keys, stats.max_keys, stats.evictions, stats.alerts) == (3, 3, 2, 5)
    assert target.evictions == 2
    assert [alert.audit_id for alert in target.detect(at(10, user="user0"))] == ["id-user0-10"]


def test_global_limit_applies_when_the_rule_sets_none() -> None:
    spec = ThresholdSpec(name="t", match=lambda ctx: True, group_by=("ka.user.name",), window_s=60, count=5)
    target = StatefulDetector([spec], max_keys=2)
    for index in range(4):
        target.detect(at(index, user=f"user{index}"))
    assert target.stats()["t"].evictions == 2


def test_state_expires_as_event_time_advances() -> None:
    spec = ThresholdSpec(name="t", match=lambda ctx: True, group_by=("ka.user.name",), window_s=60, count=5)
    target = StatefulDetector([spec])
    for index in range(100):
        target.detect(at(index, user=f"user{index}"))
    for index in range(300):
        target.detect(at(1000 + index, user="steady"))
    stats = target.stats()["t"]
    assert stats.keys == 1
    assert stats.expired == 100
