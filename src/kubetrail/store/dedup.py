"""Dedup on (cluster, auditID, stage): each event is stored once across retries, WAL replay and sealed data.

Keys are 64-bit hashes (`columns.dedup_key`) grouped by day partition: an event's partition follows from its
own timestamp, so a retry or a re-ingested file always meets the keys it could collide with. Sealed keys
are loaded per partition on first use (a sorted array, 8 bytes a key) and evicted least-recently-used. Keys
added since are held in a set until there are COMPACT_AT of them, then merged into the array (sorted in Arrow,
so that neither a load nor a merge builds millions of Python ints).
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeAlias

import pyarrow as pa

Partition = tuple[date, str]
Keys: TypeAlias = "Iterable[int] | pa.Array | pa.ChunkedArray"
KeyLoader = Callable[[Partition], Keys]
COMPACT_AT = 250_000
"""Recent keys of a partition kept in a set (~70 bytes each) before they are merged into its array (8 bytes)."""


def _arrow(keys: array[int]) -> pa.Array:
    """A zero-copy int64 view of an array('q') (valid while the array is not resized)."""
    return pa.Array.from_buffers(pa.int64(), len(keys), [None, pa.py_buffer(keys)])


def sorted_keys(keys: Keys) -> array[int]:
    """Distinct keys, sorted, as an array('q'); Arrow input is sorted without becoming Python ints."""
    import pyarrow.compute as pc  # loaded when keys are loaded (writing), not by a read-only query

    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks else pa.array([], pa.int64())
    if not isinstance(keys, pa.Array):
        keys = pa.array(list(keys), pa.int64())
    distinct = pc.unique(keys.cast(pa.int64()).drop_null())
    ordered = distinct.take(pc.sort_indices(distinct))
    result: array[int] = array("q")
    if len(ordered):
        data = ordered.buffers()[1]
        assert data is not None
        result.frombytes(memoryview(data)[ordered.offset * 8 : (ordered.offset + len(ordered)) * 8])
    return result


@dataclass
class PartitionKeys:
    """Keys seen in one (day, cluster) partition: sealed ones sorted in an array, newer ones in a set."""

    sealed: array[int] = field(default_factory=lambda: array("q"))
    recent: set[int] = field(default_factory=set)

    def __contains__(self, key: int) -> bool:
        if key in self.recent:
            return True
        sealed = self.sealed
        index = bisect.bisect_left(sealed, key)
        return index < len(sealed) and sealed[index] == key

    def __len__(self) -> int:
        return len(self.sealed) + len(self.recent)

    def compact(self) -> None:
        """Fold the recent keys into the sorted array (done when the set grows large)."""
        merged = pa.concat_arrays([_arrow(self.sealed), pa.array(list(self.recent), pa.int64())])
        self.sealed = sorted_keys(merged)
        self.recent = set()


class DedupIndex:
    """The keys of every loaded partition; not thread-safe (the store calls it under its lock)."""

    def __init__(self, loader: KeyLoader, *, max_keys: int = 16_000_000, compact_at: int = COMPACT_AT) -> None:
        self._loader = loader
        self._max_keys = max_keys
        self._compact_at = compact_at
        self._partitions: OrderedDict[Partition, PartitionKeys] = OrderedDict()
        self._total = 0

    def partition(self, key: Partition) -> PartitionKeys:
        """The keys of a partition, loading its sealed keys on first use."""
        keys = self._partitions.get(key)
        if keys is None:
            keys = PartitionKeys(sealed=sorted_keys(self._loader(key)))
            self._partitions[key] = keys
            self._total += len(keys)
            self._evict(keep=key)
        else:
            self._partitions.move_to_end(key)
        return keys

    def new_rows(self, partitions: list[Partition], keys: list[int]) -> list[bool]:
        """For each row, True when its key is new: not stored yet and not earlier in the same batch."""
        result: list[bool] = []
        append = result.append
        batch_seen: set[int] = set()
        current: Partition | None = None
        recent: set[int] = batch_seen
        sealed: array[int] = array("q")
        for part, key in zip(partitions, keys, strict=True):
            if part != current:
                current = part
                known = self.partition(part)
                recent, sealed = known.recent, known.sealed
            if key in batch_seen or key in recent:
                append(False)
                continue
            if sealed:
                index = bisect.bisect_left(sealed, key)
                if index < len(sealed) and sealed[index] == key:
                    append(False)
                    continue
            batch_seen.add(key)
            append(True)
        return result

    def add(self, partitions: list[Partition], keys: list[int]) -> None:
        """Record keys that are now in the WAL."""
        groups: dict[Partition, list[int]] = {}
        if partitions and partitions[0] == partitions[-1] and len(set(partitions)) == 1:
            groups[partitions[0]] = keys
        else:
            for part, key in zip(partitions, keys, strict=True):
                groups.setdefault(part, []).append(key)
        for part, members in groups.items():
            known = self._partitions.get(part)
            if known is None:
                continue
            before = len(known.recent)
            known.recent.update(members)
            self._total += len(known.recent) - before
            if len(known.recent) >= self._compact_at:
                known.compact()
        self._evict(keep=None)

    def discard(self, partitions: list[Partition], keys: list[int]) -> None:
        """Forget keys whose batch did not become durable, so that the retry is stored."""
        for part, key in zip(partitions, keys, strict=True):
            known = self._partitions.get(part)
            if known is None:
                continue
            if key in known.recent:
                known.recent.discard(key)
                self._total -= 1
                continue
            index = bisect.bisect_left(known.sealed, key)
            if index < len(known.sealed) and known.sealed[index] == key:
                known.sealed.pop(index)
                self._total -= 1

    def drop(self, partition: Partition) -> None:
        """Forget a partition (removed by retention, or evicted)."""
        keys = self._partitions.pop(partition, None)
        if keys is not None:
            self._total -= len(keys)

    def _evict(self, keep: Partition | None) -> None:
        while self._total > self._max_keys and len(self._partitions) > 1:
            oldest = next(iter(self._partitions))
            if oldest == keep:
                self._partitions.move_to_end(oldest)
                oldest = next(iter(self._partitions))
            self.drop(oldest)

    @property
    def loaded_keys(self) -> int:
        return self._total
