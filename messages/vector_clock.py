"""Vector clocks with the Hazelcast Python client's API plus causal comparison and merge."""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec

from messages.limits import MAX_MEMBERS, Counter, MemberId

__all__ = [
    "Causality",
    "VectorClock",
]


class Causality(enum.Enum):
    """How two vector clocks relate."""

    SAME = "same"
    BEFORE = "before"
    AFTER = "after"
    CONCURRENT = "concurrent"


class VectorClock(msgspec.Struct):
    """Replica id -> logical timestamp.

    ``is_after``, ``set_replica_timestamp``, ``entry_set`` and ``size`` behave exactly as in the
    Hazelcast client (``is_after`` treats a missing local entry as "not after", and a clock with
    more entries as after an otherwise equal one). ``compare``, ``merge`` and ``increment`` follow
    the textbook rules where a missing entry counts as 0, and return new clocks: a clock that has
    been put in a message is never mutated.
    """

    timestamps: Annotated[dict[MemberId, Counter], msgspec.Meta(max_length=MAX_MEMBERS)] = (
        msgspec.field(default_factory=dict)
    )

    __hash__ = None  # type: ignore[assignment]  # mutable through set_replica_timestamp

    def is_after(self, other: VectorClock) -> bool:
        """True if this clock is causally strictly after ``other`` (Hazelcast semantics)."""
        local = self.timestamps
        any_greater = False
        for replica_id, other_timestamp in other.timestamps.items():
            local_timestamp = local.get(replica_id)
            if local_timestamp is None or local_timestamp < other_timestamp:
                return False
            if local_timestamp > other_timestamp:
                any_greater = True
        return any_greater or len(other.timestamps) < len(local)

    def set_replica_timestamp(self, replica_id: str, timestamp: int) -> None:
        """Set one replica's timestamp in place (only for a clock not yet shared)."""
        self.timestamps[replica_id] = timestamp

    def entry_set(self) -> list[tuple[str, int]]:
        """The (replica id, timestamp) pairs."""
        return list(self.timestamps.items())

    def size(self) -> int:
        return len(self.timestamps)

    def get(self, replica_id: str) -> int:
        """The timestamp of ``replica_id``; 0 when absent."""
        return self.timestamps.get(replica_id, 0)

    def compare(self, other: VectorClock) -> Causality:
        """SAME, BEFORE, AFTER or CONCURRENT; a missing entry counts as 0."""
        mine = self.timestamps
        theirs = other.timestamps
        before = after = False
        for replica_id, timestamp in mine.items():
            other_timestamp = theirs.get(replica_id, 0)
            if timestamp > other_timestamp:
                after = True
            elif timestamp < other_timestamp:
                before = True
        for replica_id, other_timestamp in theirs.items():
            if other_timestamp > 0 and replica_id not in mine:
                before = True
        if before:
            return Causality.CONCURRENT if after else Causality.BEFORE
        return Causality.AFTER if after else Causality.SAME

    def merge(self, other: VectorClock) -> VectorClock:
        """A new clock: the pointwise maximum of both."""
        merged = dict(self.timestamps)
        for replica_id, timestamp in other.timestamps.items():
            if timestamp > merged.get(replica_id, 0):
                merged[replica_id] = timestamp
            else:
                merged.setdefault(replica_id, timestamp)
        return VectorClock(merged)

    def increment(self, replica_id: str) -> VectorClock:
        """A new clock with ``replica_id``'s entry one higher."""
        incremented = dict(self.timestamps)
        incremented[replica_id] = incremented.get(replica_id, 0) + 1
        return VectorClock(incremented)

    def without(self, replica_ids: frozenset[str]) -> VectorClock:
        """A new clock without the given entries (used to prune removed members)."""
        return VectorClock({k: v for k, v in self.timestamps.items() if k not in replica_ids})

    def copy(self) -> VectorClock:
        return VectorClock(dict(self.timestamps))
