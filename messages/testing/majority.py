"""Whether a fault schedule alone took the cluster's majority away: a total loss it forced.

A run that ends with no member left is FORCED when, by its fault schedule alone (not by anything
the protocol did), there was a stretch longer than the time the protocol needs to decide
(``decision_time``: a heartbeat, the acceptable pause, then ``down_after``) in which the picture
did not change (who is present, and which groups of running members can exchange messages) and
at no moment did a group hold a majority of the members counted: more than half, or exactly
half with the lowest address. Any other total loss is AVOIDABLE.

Why this is the line: keep-majority (and any rule that never lets two sides both keep the
cluster) may let a side keep only when it holds such a majority; a side that holds none in a
picture that stays put for longer than the protocol takes to decide must down itself, and when
no side holds one, every side does. A picture that changes sooner lets a careful protocol wait,
so that loss is not forced. The count is taken generously to the protocol, so what is called
forced is forced:

- members are incarnations (address index, restarts at that address); counted for certain are
  the first members (those present from the start) that are present, and those that crashed
  and have not been removed; a crashed member is removed ``decision_time`` after its crash, or
  after the picture last changed if that was later, when the picture held a majority until
  then (as an ideal protocol would have removed it); one that left gracefully counts no more;
- members that joined later, and restarted incarnations, may or may not be UP anywhere: each
  counts only in the group it belongs to, where it helps that group;
- a paused member runs nowhere; a limping one counts as running, since each of its freezes is
  shorter than the failure detector's acceptable pause;
- a message gets from one member to another when some chain of running members passes it on,
  each link delivering in that direction: a group is a strongly connected component of the
  running members, so a one-way or partial partition cuts a group only where no detour exists;
  windows of random loss, duplication and reordering degrade a link but do not cut it;
- a member a protocol downed or stopped still counts as present: that is the protocol's doing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from messages.settings import Settings
from messages.testing.faults import Fault, FaultKind, Network

__all__ = ["decision_time", "majority_lost_at"]

_NETWORK = frozenset(
    {
        FaultKind.PARTITION,
        FaultKind.ONE_WAY,
        FaultKind.DEGRADE,
        FaultKind.DEAF,
        FaultKind.CUT,
        FaultKind.HEAL,
    }
)

Incarnation = tuple[int, int]
"""(address index, restarts at that address): ordered as the lowest-address tie-break orders."""


def decision_time(settings: Settings) -> float:
    """Seconds from a member's last heartbeat until the protocol may down it: detection (one
    heartbeat interval plus the acceptable pause), then ``down_after``."""
    return settings.heartbeat_interval + settings.acceptable_heartbeat_pause + settings.down_after


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    """The picture from ``at`` until the next snapshot: the incarnations present (first members
    and later ones apart), when each crashed first member crashed, and the groups of running
    incarnations that can exchange messages."""

    at: float
    first: frozenset[Incarnation]
    later: frozenset[Incarnation]
    crashed: tuple[tuple[Incarnation, float], ...]
    groups: frozenset[frozenset[Incarnation]]

    def holds_majority(self, counted: frozenset[Incarnation]) -> bool:
        """Some group holds more than half of ``counted`` and its own later members, or
        exactly half with the lowest of them."""
        for group in self.groups:
            total = counted | (self.later & group)
            size = len(group & total)
            if 2 * size > len(total) or (2 * size == len(total) and min(total) in group):
                return True
        return False


def _snapshots(faults: Sequence[Fault], members: int) -> list[_Snapshot]:
    """The picture from time 0 on, and after each moment at which a fault changed it."""
    ordered = sorted(faults, key=lambda fault: (fault.at, fault.kind.value))
    network = Network(ordered)
    current = {index: (index, 0) for index in range(members)}  # address index: incarnation
    first, later = set(current.values()), set[Incarnation]()
    crashed: dict[Incarnation, float] = {}
    gone: set[int] = set()  # address indices whose incarnation crashed
    paused: dict[Incarnation, float] = {}
    times = sorted({0.0, *(f.at for f in ordered), *(f.until for f in ordered)})
    snapshots: list[_Snapshot] = []
    pending = iter(ordered)
    fault = next(pending, None)
    for now in times:
        while fault is not None and fault.at <= now:
            target = fault.target if fault.target is not None else -1
            member = current.get(target)
            match fault.kind:
                case FaultKind.JOIN:
                    index = max(current) + 1
                    current[index] = (index, 0)
                    later.add(current[index])
                case FaultKind.CRASH if member is not None and target not in gone:
                    gone.add(target)
                    if member in first:
                        crashed[member] = fault.at
                    first.discard(member)
                    later.discard(member)
                case FaultKind.RESTART if member is not None and target in gone:
                    gone.discard(target)
                    current[target] = (target, member[1] + 1)
                    later.add(current[target])
                case FaultKind.PAUSE if member is not None:
                    paused[member] = max(paused.get(member, 0.0), fault.until)
                case FaultKind.LEAVE if member is not None:
                    first.discard(member)
                    later.discard(member)
                case kind if kind in _NETWORK:
                    network.apply(fault)
                case _:
                    pass  # a limp (it runs), or a fault on a member that is not there
            fault = next(pending, None)
        running = {m for m in first | later if paused.get(m, 0.0) <= now}
        groups = _components(running, network)
        snapshot = _Snapshot(
            now, frozenset(first), frozenset(later), tuple(crashed.items()), groups
        )
        if not snapshots or dataclasses.replace(snapshot, at=snapshots[-1].at) != snapshots[-1]:
            snapshots.append(snapshot)  # a fault that changes no group changes no picture
    return snapshots


def _components(running: set[Incarnation], network: Network) -> frozenset[frozenset[Incarnation]]:
    """The strongly connected components of ``running`` under the links that deliver."""
    reach: dict[Incarnation, set[Incarnation]] = {}
    for source in running:
        seen, frontier = {source}, [source]
        while frontier:
            member = frontier.pop()
            for other in running - seen:
                if network.delivers(member[0], other[0]):
                    seen.add(other)
                    frontier.append(other)
        reach[source] = seen
    return frozenset(frozenset(m for m in reach[a] if a in reach[m]) for a in running)


def majority_lost_at(faults: Sequence[Fault], members: int, decide_after: float) -> float | None:
    """The start of the first stretch of more than ``decide_after`` seconds in which the picture
    did not change and no group held a majority (see the module's docstring); None when there
    was none. ``members`` start at address indices ``0..members-1``; joins add the next ones."""
    snapshots = _snapshots(faults, members)
    ends = [*(snapshot.at for snapshot in snapshots[1:]), float("inf")]
    removed: set[Incarnation] = set()
    for snapshot, end in zip(snapshots, ends, strict=True):
        crashed = [(member, at) for member, at in snapshot.crashed if member not in removed]
        if snapshot.holds_majority(snapshot.first | {member for member, _ in crashed}):
            removed.update(m for m, at in crashed if max(at, snapshot.at) + decide_after <= end)
        elif end - snapshot.at > decide_after:
            return snapshot.at
    return None
