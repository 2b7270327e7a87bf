"""Load-balancing strategies: pure choices of the next member among a tuple of members."""

from __future__ import annotations

import random
from typing import Protocol

from messages.member import Member

__all__ = ["LoadBalancingStrategy", "RandomStrategy", "RoundRobinStrategy", "strategy_named"]


class LoadBalancingStrategy(Protocol):
    """Chooses one member of ``members`` per call, or None when there is none."""

    def next(self, members: tuple[Member, ...]) -> Member | None: ...


class RandomStrategy:
    """Picks a member uniformly at random (Hazelcast's ``RandomLB``)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def next(self, members: tuple[Member, ...]) -> Member | None:
        return self._rng.choice(members) if members else None


class RoundRobinStrategy:
    """Takes the members in turn: call ``k`` returns ``members[(start + k) % len(members)]``.

    The counter does not depend on the members, so a changed member tuple keeps the rotation going.
    With ``start=None`` the counter starts at a random offset, so that clients that start together
    do not all pick the same first member (as Hazelcast's ``RoundRobinLB``).
    """

    def __init__(self, start: int | None = None) -> None:
        if start is not None and not isinstance(start, int):
            raise TypeError(f"start must be an int or None, not {type(start).__name__}")
        self._index = random.randrange(1 << 31) if start is None else start

    def next(self, members: tuple[Member, ...]) -> Member | None:
        if not members:
            return None
        member = members[self._index % len(members)]
        self._index += 1
        return member


def strategy_named(name: str) -> LoadBalancingStrategy:
    """The strategy ``Settings.load_balancing`` names ("random" or "round_robin"), fresh: the
    node's load balancer and its router each rotate on their own."""
    return RandomStrategy() if name == "random" else RoundRobinStrategy()
