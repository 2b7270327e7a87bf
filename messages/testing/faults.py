"""The simulator's fault model: seeded fault schedules, and the network they act on.

A schedule is a list of timed ``Fault`` values drawn from one ``random.Random``: symmetric and
one-way partitions that heal, crashes (some restarted at the same address as a new
incarnation), long pauses (the member's clock jumps when it runs again), limping members (frozen
most of each second for up to a minute), windows of message loss, duplication and reordering,
loss of everything sent to one member, one member cut from some peers but not others, joins and
one graceful leave (the leaver suffers no fault, not even message loss). Every fault ends
(``until``); the time after the last one is when the cluster must converge.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import random
from collections.abc import Iterator, Sequence

__all__ = ["NEW_KINDS", "Fault", "FaultKind", "Network", "schedule_faults"]

LATENCY = (0.0005, 0.002)
"""Seconds a message takes between two members on a healthy network (uniform)."""

LIMP_PERIOD = 1.0
"""A limping member runs for the first ``Fault.runs`` seconds of each period, then freezes."""


class FaultKind(enum.Enum):
    """What a fault does."""

    PARTITION = "partition"  # the groups cannot reach each other, either way
    ONE_WAY = "one-way"  # messages from the first group to the second are lost
    DEGRADE = "degrade"  # loss, duplication and reordering between everyone
    HEAL = "heal"  # ends the network fault ``heals``
    CRASH = "crash"
    RESTART = "restart"  # a new incarnation at the crashed member's address
    PAUSE = "pause"  # the member runs nothing until ``until``
    LIMP = "limp"  # the member runs ``runs`` seconds of each LIMP_PERIOD, frozen the rest
    DEAF = "deaf"  # every message to the member is lost (it still sends)
    CUT = "cut"  # the member (groups[0]) cannot reach some peers (groups[1]), either way
    JOIN = "join"  # a member at a new address joins
    LEAVE = "leave"  # the member leaves gracefully (it suffers no other fault)


_DRAWN = (
    FaultKind.PARTITION,
    FaultKind.ONE_WAY,
    FaultKind.DEGRADE,
    FaultKind.CRASH,
    FaultKind.PAUSE,
    FaultKind.JOIN,
    FaultKind.LIMP,
    FaultKind.DEAF,
    FaultKind.CUT,
)
"""The faults a schedule draws from, equally likely (heals, restarts and the leave follow)."""

NEW_KINDS = frozenset({FaultKind.LIMP, FaultKind.DEAF, FaultKind.CUT})
"""The kinds added for the faults a single bad member causes (``schedule_faults`` can leave them
out, and then draws exactly the schedules it drew before they existed)."""


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault: what, when it starts (``at``) and ends (``until``), and whom it hits
    (``target``: an address index; ``groups``: the sides of a partition)."""

    kind: FaultKind
    at: float
    until: float
    target: int | None = None
    groups: tuple[tuple[int, ...], ...] = ()
    loss: float = 0.0
    duplicate: float = 0.0
    jitter: float = 0.0
    heals: int | None = None
    ident: int = 0
    runs: float = 0.0

    def wakes_at(self, now: float) -> float:
        """When the member a LIMP fault freezes runs again: ``now`` when it runs at ``now``."""
        if not self.at <= now < self.until:
            return now
        periods = math.floor((now - self.at) / LIMP_PERIOD + 1e-9)
        start = self.at + periods * LIMP_PERIOD
        return now if now < start + self.runs else min(start + LIMP_PERIOD, self.until)

    def __str__(self) -> str:
        parts = [f"{self.at:7.3f}-{self.until:7.3f} {self.kind.value}"]
        if self.target is not None:
            parts.append(f"m{self.target}")
        if self.groups:
            parts.append(" | ".join(",".join(f"m{i}" for i in g) for g in self.groups))
        if self.kind is FaultKind.DEGRADE:
            parts.append(f"loss={self.loss:.2f} dup={self.duplicate:.2f} jitter={self.jitter:.2f}s")
        if self.kind is FaultKind.LIMP:
            parts.append(f"runs={self.runs:.2f}s/{LIMP_PERIOD:g}s")
        if self.heals is not None:
            parts.append(f"#{self.heals}")
        return " ".join(parts)


def schedule_faults(
    rng: random.Random, members: int, count: int, start: float, new_kinds: bool = True
) -> list[Fault]:
    """``count`` faults (plus the heals and restarts they imply) from ``start`` on, over members
    at address indices ``0..members-1`` and those the joins add. One member may leave; it is
    kept out of every other fault, so no fault excuses reporting it unreachable. Without
    ``new_kinds``, no NEW_KINDS fault is drawn."""
    drawn = _DRAWN if new_kinds else tuple(k for k in _DRAWN if k not in NEW_KINDS)
    indices = list(range(members))
    leaver = rng.randrange(1, members) if members > 2 and rng.random() < 0.5 else None
    faults: list[Fault] = []
    for ident in range(1, count + 1):
        at = start + rng.uniform(0.0, 25.0)
        until = at + rng.uniform(1.0, 25.0)
        kind = rng.choice(drawn)
        others = [i for i in indices if i != leaver]
        match kind:
            case FaultKind.PARTITION | FaultKind.ONE_WAY:
                rng.shuffle(others)
                cut = rng.randint(1, max(1, len(others) - 1))
                groups = (tuple(sorted(others[:cut])), tuple(sorted(others[cut:])))
                faults.append(Fault(kind, at, until, groups=groups, ident=ident))
                faults.append(Fault(FaultKind.HEAL, until, until, heals=ident))
            case FaultKind.DEGRADE:
                loss, duplicate = rng.uniform(0.0, 0.2), rng.uniform(0.0, 0.1)
                jitter = rng.uniform(0.0, 0.5)
                faults.append(
                    Fault(
                        kind, at, until, loss=loss, duplicate=duplicate, jitter=jitter, ident=ident
                    )
                )
                faults.append(Fault(FaultKind.HEAL, until, until, heals=ident))
            case FaultKind.CRASH:
                target = rng.choice(others)
                restarts = rng.random() < 0.6
                faults.append(Fault(kind, at, until if restarts else at, target=target))
                if restarts:
                    faults.append(Fault(FaultKind.RESTART, until, until, target=target))
            case FaultKind.PAUSE:
                faults.append(Fault(kind, at, until, target=rng.choice(others)))
            case FaultKind.LIMP:
                until = at + rng.uniform(1.0, 60.0)
                runs = rng.uniform(0.1, 0.3)
                faults.append(Fault(kind, at, until, target=rng.choice(others), runs=runs))
            case FaultKind.DEAF:
                faults.append(Fault(kind, at, until, target=rng.choice(others), ident=ident))
                faults.append(Fault(FaultKind.HEAL, until, until, heals=ident))
            case FaultKind.CUT:
                target = rng.choice(others)
                peers = [i for i in others if i != target]
                rng.shuffle(peers)
                away = tuple(sorted(peers[: rng.randint(1, max(1, len(peers) - 1))]))
                split = ((target,), away)
                faults.append(Fault(kind, at, until, target=target, groups=split, ident=ident))
                faults.append(Fault(FaultKind.HEAL, until, until, heals=ident))
            case FaultKind.JOIN:
                faults.append(Fault(kind, at, at))
                indices.append(max(indices) + 1)
    if leaver is not None:
        at = start + rng.uniform(0.0, 25.0)
        faults.append(Fault(FaultKind.LEAVE, at, at, target=leaver))
    return sorted(faults, key=lambda fault: (fault.at, fault.kind.value))


class Network:
    """Which messages get through, and when: the active network faults and per-link FIFO."""

    def __init__(self, faults: Sequence[Fault] = ()) -> None:
        self._active: dict[int, Fault] = {}
        self._blocked: set[tuple[int, int]] = set()
        self._deaf: set[int] = set()
        self._last: dict[tuple[int, int], float] = {}
        # A leaver suffers no network fault, from the start: loss before its leave could make
        # it look unreachable then, which would say nothing about how leaving works.
        self.spared = {
            f.target for f in faults if f.kind is FaultKind.LEAVE and f.target is not None
        }

    def apply(self, fault: Fault) -> None:
        if fault.kind is FaultKind.HEAL:
            self._active.pop(fault.heals or 0, None)
        else:
            self._active[fault.ident] = fault
        self._blocked = set(self._blocked_pairs())
        active = self._active.values()
        self._deaf = {f.target for f in active if f.kind is FaultKind.DEAF and f.target is not None}

    def delivers(self, source: int, target: int) -> bool:
        """Whether the active faults let a message from ``source`` reach ``target`` at all
        (random loss aside)."""
        if (source, target) in self._blocked:
            return False
        return target not in self._deaf or source in self.spared

    def deliveries(
        self, rng: random.Random, source: int, target: int, now: float
    ) -> Iterator[float]:
        """The delays after which a message from ``source`` to ``target`` sent at ``now``
        arrives: none when it is lost, two when it is duplicated."""
        if not self.delivers(source, target):
            return
        loss = duplicate = jitter = 0.0
        degraded = source not in self.spared and target not in self.spared
        for fault in self._active.values() if degraded else ():
            if fault.kind is FaultKind.DEGRADE:
                loss, duplicate = max(loss, fault.loss), max(duplicate, fault.duplicate)
                jitter = max(jitter, fault.jitter)
        if loss and rng.random() < loss:
            return
        copies = 2 if duplicate and rng.random() < duplicate else 1
        for _ in range(copies):
            delay = rng.uniform(*LATENCY)
            if jitter:
                delay += rng.uniform(0.0, jitter)  # reordered: no FIFO while it lasts
            else:
                link = (source, target)
                delay = max(delay, self._last.get(link, 0.0) - now)
                self._last[link] = now + delay
            yield delay

    def _blocked_pairs(self) -> Iterator[tuple[int, int]]:
        for fault in self._active.values():
            if fault.kind in (FaultKind.PARTITION, FaultKind.CUT):
                first, second = fault.groups
                for a in first:
                    for b in second:
                        yield a, b
                        yield b, a
            elif fault.kind is FaultKind.ONE_WAY:
                first, second = fault.groups
                yield from ((a, b) for a in first for b in second)
