"""A bounded key store: least-recently-used eviction, counted, and expiry as event time advances."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

State = TypeVar("State")


class KeyStore(Generic[State]):
    """Per-key state of one rule, at most `max_keys` keys; the least recently touched key goes first.

    Each entry remembers when (event time, ns) it was last touched, so entries idle for longer than
    a rule's horizon are dropped in order from the old end without scanning the rest.
    """

    __slots__ = ("_entries", "evictions", "expired", "max_keys")

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.evictions = 0
        self.expired = 0
        self._entries: OrderedDict[object, tuple[int, State]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: object) -> State | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def touched(self, key: object) -> int | None:
        """When the key was last touched (event time, ns), or None when it is not stored."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def refresh(self, key: object, now_ns: int) -> int | None:
        """Mark a stored key as the most recently used at `now_ns`; when it was touched before (None: not stored)."""
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            return None
        entries.move_to_end(key)
        if now_ns > entry[0]:
            entries[key] = (now_ns, entry[1])
        return entry[0]

    def touch(self, key: object, now_ns: int, make: Callable[[], State]) -> State:
        """The key's state (made when absent), marked as the most recently used at `now_ns`."""
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            state = make()
            entries[key] = (now_ns, state)
            if len(entries) > self.max_keys:
                entries.popitem(last=False)
                self.evictions += 1
            return state
        entries.move_to_end(key)
        if now_ns > entry[0]:
            entries[key] = (now_ns, entry[1])
        return entry[1]

    def put(self, key: object, now_ns: int, state: State) -> None:
        """Store a state (as when restoring a checkpoint), most recently used."""
        self._entries[key] = (now_ns, state)
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
            self.evictions += 1

    def discard(self, key: object) -> None:
        self._entries.pop(key, None)

    def expire(self, before_ns: int) -> None:
        """Drop entries last touched before `before_ns`, oldest first."""
        entries = self._entries
        while entries:
            key, (touched, _) = next(iter(entries.items()))
            if touched >= before_ns:
                break
            del entries[key]
            self.expired += 1

    def items(self) -> Iterator[tuple[object, int, State]]:
        """Every (key, last touched, state), least recently used first."""
        for key, (touched, state) in self._entries.items():
            yield key, touched, state
