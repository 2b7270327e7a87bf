"""Compact references to membership versions: what an envelope names instead of a whole clock.

An envelope names the membership version its sender had seen by its *digest*, 8 bytes whatever
the cluster's size. The digest is a function of the clock's value alone (its entries in sorted
order, hashed with BLAKE2b), so every node computes the same digest for the same version, and a
digest names one clock (a 64-bit hash: a collision among the few versions in flight is
negligible). The receiver resolves a digest against the versions it knows: the ones it has
adopted itself and the ones senders have defined to it. A sender defines a version by sending
its clock beside the digest (``Definitions`` says when); the receiver checks that the clock
hashes to the digest before it learns it (``VersionTable``). Pure: time is passed in.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import msgspec

from messages.vector_clock import VectorClock

__all__ = [
    "EMPTY_DIGEST",
    "MAX_DEFINED_RECEIVERS",
    "MAX_KNOWN_VERSIONS",
    "Definitions",
    "VersionDigest",
    "VersionTable",
    "version_digest",
]

VersionDigest = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""The digest of a membership version (``version_digest``): a signed 64-bit int."""

MAX_KNOWN_VERSIONS = 64
"""Versions a receiver keeps by digest: far more than an honest cluster has in flight at once
(a version lives until the next gossip supersedes it), few enough that a peer defining versions
without end costs bounded memory."""

MAX_DEFINED_RECEIVERS = 4096
"""Receivers a sender remembers having defined its version to; forgetting one only costs a
definition sent again."""

_sorted_encoder = msgspec.msgpack.Encoder(order="sorted")


def version_digest(clock: VectorClock) -> int:
    """The digest of ``clock``: equal clocks have equal digests, whatever their entries' order."""
    canonical = _sorted_encoder.encode(clock)
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big", signed=True)


_EMPTY = VectorClock()
EMPTY_DIGEST = version_digest(_EMPTY)
"""The digest of the empty version (a node that has adopted no state yet)."""


class VersionTable:
    """The versions a receiver can resolve a digest to: bounded, least recently used out first.

    A digest learned here is always the digest of its clock (``learn`` checks it), so a peer can
    add true versions only, and none that would make another sender's envelope resolve wrongly.
    """

    def __init__(self, capacity: int = MAX_KNOWN_VERSIONS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._clocks: dict[int, VectorClock] = {}

    def __len__(self) -> int:
        return len(self._clocks)

    def get(self, digest: int) -> VectorClock | None:
        """The version ``digest`` names, if known (the empty version always is)."""
        if digest == EMPTY_DIGEST:
            return _EMPTY
        clock = self._clocks.pop(digest, None)
        if clock is not None:
            self._clocks[digest] = clock  # most recently used last
        return clock

    def learn(self, digest: int, clock: VectorClock) -> bool:
        """Keep ``clock``, defined by a peer, under ``digest``; True if it was not known. Raises
        ``ValueError`` (and keeps nothing) when ``clock`` does not hash to ``digest``."""
        if version_digest(clock) != digest:
            raise ValueError(f"bad version: its clock does not hash to its digest {digest}")
        return self._keep(digest, clock)

    def adopt(self, clock: VectorClock) -> int:
        """Keep ``clock``, a version this node has adopted; return its digest."""
        digest = version_digest(clock)
        self._keep(digest, clock)
        return digest

    def _keep(self, digest: int, clock: VectorClock) -> bool:
        if self.get(digest) is not None:
            return False
        if len(self._clocks) >= self._capacity:
            del self._clocks[next(iter(self._clocks))]
        self._clocks[digest] = clock
        return True


class Definitions:
    """The sending side: whether an envelope to a receiver carries its version's clock.

    It does with the first envelope that names a version to that receiver, and again with the
    first one ``refresh`` seconds after the last definition: a definition lost with a broken
    link (the envelopes after it on that link are lost with it, TCP delivers a prefix) is thus
    sent again before the receiver gives up waiting for the gap it left. Bounded: a receiver
    forgotten gets the definition again.
    """

    def __init__(self, refresh: float, capacity: int = MAX_DEFINED_RECEIVERS) -> None:
        if refresh <= 0 or capacity < 1:
            raise ValueError("refresh must be positive and capacity at least 1")
        self._refresh = refresh
        self._capacity = capacity
        self._defined: dict[str, tuple[int, float]] = {}  # receiver -> (digest, when defined)

    def forget(self, receiver: str) -> None:
        """``receiver`` is gone (a client whose links all closed): a later one of that name gets
        the definition anew."""
        self._defined.pop(receiver, None)

    def needed(self, receiver: str, digest: int, now: float) -> bool:
        """Whether the envelope to ``receiver`` naming ``digest`` now carries its clock (and, if
        so, that it was sent then)."""
        last = self._defined.get(receiver)
        if last is not None and last[0] == digest and now - last[1] < self._refresh:
            return False
        if last is None and len(self._defined) >= self._capacity:
            del self._defined[next(iter(self._defined))]
        self._defined.pop(receiver, None)
        self._defined[receiver] = (digest, now)
        return True
