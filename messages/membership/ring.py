"""The heartbeat ring: who sends heartbeats to whom.

Members are placed on a ring by a stable hash of their id (blake2b, not Python's salted
``hash()``), so every process computes the same ring. Each member heartbeats the next ``k``
members after it and is therefore monitored by the ``k`` members before it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Set

from messages.settings import Settings

__all__ = ["heartbeat_targets", "monitored_by"]

_LAN = Settings.lan()


def heartbeat_targets(
    self_id: str,
    member_ids: Iterable[str],
    k: int = _LAN.monitored_by,
    unreachable: Set[str] = frozenset(),
) -> tuple[str, ...]:
    """The members after ``self_id`` on the ring, nearest first, never ``self_id``: up to ``k``
    of them not in ``unreachable``, and every unreachable one met on the way.

    Going on past unreachable members (Pekko's ``HeartbeatNodeRing.receivers``), each member
    keeps watching ``k`` reachable ones: in a partition every member of the far side ends up
    watched by its nearest predecessor on this side, and one that comes back is heard at once.
    ``self_id`` takes its place on the ring whether or not ``member_ids`` contains it.
    """
    ring = _ring(self_id, member_ids, k)
    index = ring.index(self_id)
    targets: list[str] = []
    counted = 0
    for distance in range(1, len(ring)):
        member = ring[(index + distance) % len(ring)]
        targets.append(member)
        if member not in unreachable:
            counted += 1
            if counted == k:
                break
    return tuple(targets)


def monitored_by(
    self_id: str, member_ids: Iterable[str], k: int = _LAN.monitored_by
) -> tuple[str, ...]:
    """The up to ``k`` members before ``self_id`` on the ring, nearest first.

    They are exactly the members whose ``heartbeat_targets`` include ``self_id``: the ones whose
    heartbeats it should expect.
    """
    return _neighbours(self_id, member_ids, k, step=-1)


@functools.lru_cache(maxsize=1 << 16)
def _ring_position(member_id: str) -> tuple[bytes, str]:
    """Sort key of a member on the ring: a stable hash of its id, then the id to break ties
    (cached: every heartbeat tick places every member, and ids do not change)."""
    if not isinstance(member_id, str):
        raise TypeError(f"member ids must be str, not {type(member_id).__name__}")
    return hashlib.blake2b(member_id.encode(), digest_size=8).digest(), member_id


def _ring(self_id: str, member_ids: Iterable[str], k: int) -> list[str]:
    """The members and ``self_id`` in ring order, once the arguments are checked."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, not {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(member_ids, str):
        raise TypeError("member_ids must be an iterable of ids, not a single str")
    return sorted({*member_ids, self_id}, key=_ring_position)


def _neighbours(self_id: str, member_ids: Iterable[str], k: int, step: int) -> tuple[str, ...]:
    ring = _ring(self_id, member_ids, k)
    size = len(ring)
    index = ring.index(self_id)
    return tuple(
        ring[(index + step * distance) % size] for distance in range(1, min(k, size - 1) + 1)
    )
