"""The simulated cluster a stream runs against: its clock, its callers and its objects."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from kubetrail.emit.generator.clock import Clock
from kubetrail.emit.generator.identities import Cast, build_cast
from kubetrail.emit.generator.workloads import Inventory, build_nodes


@dataclass
class World:
    """Shared state of one stream: background traffic and attack scenarios act on the same objects."""

    clock: Clock
    cast: Cast
    inventory: Inventory

    @classmethod
    def build(cls, nodes: int, start: datetime, rng: random.Random) -> World:
        """A cluster of `nodes` nodes whose names and uids are drawn from `rng`."""
        inventory = Inventory(build_nodes(nodes, rng), rng)
        return cls(Clock(start), build_cast(inventory, rng), inventory)
