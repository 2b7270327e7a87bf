"""Seeded randomness for the protocol core: a SplitMix64 generator whose state is one integer.

The step function keeps that integer in the node's state, so a node's random choices (gossip
peers, backoff jitter) are a function of its seed and inputs: the simulator replays them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["Random", "SplitMix"]

_MASK = (1 << 64) - 1
_T = TypeVar("_T")


class Random(Protocol):
    """What the core needs of a random source (``random.Random`` has it too)."""

    def random(self) -> float: ...

    def choice(self, seq: Sequence[_T]) -> _T: ...


class SplitMix:
    """SplitMix64 (Steele, Lea, Flood 2014): fast, well mixed, and its whole state is ``state``."""

    __slots__ = ("state",)

    def __init__(self, state: int) -> None:
        self.state = state & _MASK

    def next64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        return (self.next64() >> 11) * (1.0 / (1 << 53))

    def choice(self, seq: Sequence[_T]) -> _T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[self.next64() % len(seq)]
