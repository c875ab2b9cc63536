"""Which worker handles which partition: members announce themselves in a JetStream key-value bucket, the
partitions are spread over the live members by rendezvous hashing, and a worker holds a lease on each partition
it works on.

The bucket's entries expire (`MEMBER_TTL_SECONDS`) unless renewed, so a worker that dies stops being a member
and loses its leases within seconds; its partitions go to the others, whose durable consumers then receive the
batches it had not acknowledged. Rendezvous hashing moves only the partitions of a member that came or went.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Sequence

from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from kubetrail.bus.config import BusConfig

log = logging.getLogger(__name__)

_MEMBER = "member."
_LEASE = "lease."
_KEY_UNSAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")


def _weight(member: str, partition: int) -> bytes:
    return hashlib.blake2b(f"{member}\0{partition}".encode(), digest_size=8).digest()


def owner_of(partition: int, members: Sequence[str]) -> str | None:
    """The member a partition belongs to (highest rendezvous weight); None when there are no members."""
    return max(members, key=lambda member: _weight(member, partition), default=None)


def assigned(member: str, members: Sequence[str], partitions: int) -> set[int]:
    """The partitions that belong to `member` among `members`."""
    return {partition for partition in range(partitions) if owner_of(partition, members) == member}


def _key(prefix: str, name: str) -> str:
    return prefix + _KEY_UNSAFE.sub("_", name)


class Membership:
    """This worker's entry among the members, and its leases on partitions."""

    def __init__(self, js: JetStreamContext, config: BusConfig, worker_id: str) -> None:
        self.js = js
        self.config = config
        self.worker_id = worker_id
        self.leases: dict[int, int] = {}  # partition -> revision of our lease entry
        self._kv: KeyValue | None = None
        self._value = worker_id.encode()

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(self.config.members_bucket)
        return self._kv

    async def heartbeat(self) -> list[str]:
        """Renew this worker's membership; the live members, this one included, sorted."""
        kv = await self._bucket()
        await kv.put(_key(_MEMBER, self.worker_id), self._value)
        try:
            keys = [key for key in await kv.keys() if key.startswith(_MEMBER)]
        except NoKeysError:
            keys = []
        members = {self.worker_id}
        for entry in await asyncio.gather(*(self._get(kv, key) for key in keys)):
            if entry is not None and entry.value:
                members.add(entry.value.decode())
        return sorted(members)

    @staticmethod
    async def _get(kv: KeyValue, key: str) -> KeyValue.Entry | None:
        try:
            return await kv.get(key)
        except KeyNotFoundError:  # expired or left since listed
            return None

    async def claim(self, partition: int) -> bool:
        """Take the lease on a partition when it is free (or still this worker's, from before a restart)."""
        kv = await self._bucket()
        key = _key(_LEASE, str(partition))
        try:
            self.leases[partition] = await kv.create(key, self._value)
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return False  # expired a moment ago: the next round takes it
        if entry.value != self._value or entry.revision is None:
            return False
        try:
            self.leases[partition] = await kv.update(key, self._value, last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self, partition: int) -> bool:
        """Keep the lease; False when it was lost (expired and taken by another worker)."""
        kv = await self._bucket()
        try:
            self.leases[partition] = await kv.update(
                _key(_LEASE, str(partition)), self._value, last=self.leases[partition]
            )
        except KeyWrongLastSequenceError:
            self.leases.pop(partition, None)
            return False
        return True

    async def release(self, partition: int) -> None:
        """Give the lease back at once, so the partition's next owner need not wait for it to expire."""
        revision = self.leases.pop(partition, None)
        if revision is None:
            return
        try:
            kv = await self._bucket()
            await kv.delete(_key(_LEASE, str(partition)), last=revision)
        except (NatsError, JetStreamError, OSError) as error:
            log.warning("releasing partition %d: %s (it expires on its own)", partition, error)

    async def leave(self) -> None:
        """Stop being a member (the leases must have been released first)."""
        try:
            kv = await self._bucket()
            await kv.delete(_key(_MEMBER, self.worker_id))
        except (NatsError, JetStreamError, OSError) as error:
            log.warning("leaving the worker pool: %s (the entry expires on its own)", error)
