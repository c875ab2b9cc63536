"""The dedup index: sealed keys loaded per partition, recent keys, eviction and reload."""

from __future__ import annotations

from datetime import date

from kubetrail.store.dedup import DedupIndex, Partition

DAY = date(2026, 3, 19)


def test_keys_are_found_whether_sealed_recent_or_earlier_in_the_batch() -> None:
    index = DedupIndex(lambda partition: [5, 1, 3])
    part: Partition = (DAY, "prod")
    assert index.new_rows([part] * 5, [1, 2, 2, 3, 4]) == [False, True, False, False, True]
    index.add([part, part], [2, 4])
    assert index.new_rows([part, part], [2, 4]) == [False, False]


def test_discarded_keys_are_new_again() -> None:
    index = DedupIndex(lambda partition: [])
    part: Partition = (DAY, "prod")
    index.new_rows([part], [9])
    index.add([part], [9])
    index.discard([part], [9])
    assert index.new_rows([part], [9]) == [True]


def test_eviction_reloads_a_partition_through_the_loader() -> None:
    stored: dict[Partition, list[int]] = {(DAY, "a"): [1, 2], (DAY, "b"): [3, 4]}
    loads: list[Partition] = []

    def loader(partition: Partition) -> list[int]:
        loads.append(partition)
        return stored[partition]

    index = DedupIndex(loader, max_keys=3)
    assert index.new_rows([(DAY, "a")], [1]) == [False]
    assert index.new_rows([(DAY, "b")], [3]) == [False]
    assert index.loaded_keys <= 3
    assert index.new_rows([(DAY, "a")], [2]) == [False]
    assert loads == [(DAY, "a"), (DAY, "b"), (DAY, "a")]


def test_compaction_keeps_every_key() -> None:
    index = DedupIndex(lambda partition: [10], compact_at=3)
    part: Partition = (DAY, "prod")
    index.new_rows([part], [0])
    index.add([part] * 4, [1, 2, 3, 4])
    assert index.new_rows([part] * 6, [10, 1, 2, 3, 4, 5]) == [False] * 5 + [True]
