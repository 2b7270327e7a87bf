"""Load-balancing strategies: pure choices of the next member among a tuple of members."""

from __future__ import annotations

from typing import Protocol

from messages.member import Member
from messages.membership.entropy import Random

__all__ = ["LoadBalancingStrategy", "RandomStrategy", "RoundRobinStrategy", "strategy_named"]


class LoadBalancingStrategy(Protocol):
    """Chooses one member of ``members`` per call, or None when there is none."""

    def next(self, members: tuple[Member, ...]) -> Member | None: ...


class RandomStrategy:
    """Picks a member uniformly at random (Hazelcast's ``RandomLB``) with ``rng``, which the
    caller makes (a ``random.Random``, or a seeded one for a reproducible run)."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng

    def next(self, members: tuple[Member, ...]) -> Member | None:
        return self._rng.choice(members) if members else None


class RoundRobinStrategy:
    """Takes the members in turn: call ``k`` returns ``members[(start + k) % len(members)]``.

    The counter does not depend on the members, so a changed member tuple keeps the rotation going.
    """

    def __init__(self, start: int) -> None:
        if not isinstance(start, int):
            raise TypeError(f"start must be an int, not {type(start).__name__}")
        self._index = start

    @classmethod
    def starting_anywhere(cls, rng: Random) -> RoundRobinStrategy:
        """A round robin from an offset ``rng`` draws, so that clients that start together do not
        all pick the same first member (as Hazelcast's ``RoundRobinLB``)."""
        return cls(rng.choice(range(1 << 31)))

    def next(self, members: tuple[Member, ...]) -> Member | None:
        if not members:
            return None
        member = members[self._index % len(members)]
        self._index += 1
        return member


def strategy_named(name: str, rng: Random) -> LoadBalancingStrategy:
    """The strategy ``Settings.load_balancing`` names ("random" or "round_robin"), fresh: the
    node's load balancer and its router each rotate on their own. ``rng`` makes its random picks,
    or the round robin's first one."""
    return RandomStrategy(rng) if name == "random" else RoundRobinStrategy.starting_anywhere(rng)
