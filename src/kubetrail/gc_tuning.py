"""Garbage-collector settings for processes that stream events.

Decoding allocates a few lists and dicts per event (groups, source IPs, annotations), so with the default
settings the collector's young-generation pass runs every 700 allocations, hundreds of times a second on a busy
stream, and each older pass rescans everything loaded at start (modules, compiled rules). A streaming process
calls `tune_for_streaming` once its set-up is done.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Allocations between young-generation passes (the default is 700)."""


def tune_for_streaming(*, collect: bool = False) -> None:
    """Move every object alive now out of the collector's view and collect the young generation less often.

    `collect` first frees what is already garbage (worth its tens of milliseconds in a long-running server).
    """
    if collect:
        gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
