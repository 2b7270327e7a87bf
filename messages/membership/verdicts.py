"""Which members count as unreachable: the reachability table read as one shared verdict.

A pure function of the gossiped members and rows, so every member that holds the same table
counts the same members unreachable, and keep-majority (``downing``) then keeps the same side.
Only live (not DOWN) observers' rows are read, and one kind of observer is not taken at its word:

- A *suspect* is a counted observer whose own row alone already makes it lose keep-majority (it
  will down itself whatever else it learns) and that an observer which is no such predicted
  self-downer accuses. Its verdicts are ignored (a deaf member accuses everyone, and everyone
  accuses it) and it counts as unreachable, so the side that keeps downs it: never excused. Its
  own view holds its row, so there it is a suspect too, or it loses on the plain union. A
  predicted self-downer nobody else accuses (one side of a clean partition, seen from inside)
  is read as it is: the union, as before.
- *Indirectly connected* members (Pekko's term: an observer that is also accused, which a clean
  partition seen from one side never gives) are not set apart (they count by the union): downing the fewest of them (a
  minimum vertex cover of their accusation graph) and setting their verdicts aside excused the
  members they accused, and the simulator found a split brain in that (seed 465, see
  docs/architecture.md).

Everything else is the union of verdicts, as before: whoever a trusted observer accuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from messages.member import Member, MemberStatus
from messages.membership.merging import ReachabilityRow, address_order

__all__ = ["counted_unreachable", "predicted_self_downers"]

COUNTED = frozenset({MemberStatus.UP, MemberStatus.LEAVING})
"""The members keep-majority counts (``downing``)."""


def counted_unreachable(
    members: Mapping[str, Member], rows: Iterable[ReachabilityRow]
) -> frozenset[str]:
    """The members that count as unreachable: suspects, and whoever the other live observers
    accuse."""
    verdicts = {
        row.observer: row.unreachable.intersection(members)
        for row in rows
        if (member := members.get(row.observer)) is not None
        and member.status is not MemberStatus.DOWN
    }
    predicted = predicted_self_downers(members, verdicts)
    confirmed = frozenset().union(*(row for o, row in verdicts.items() if o not in predicted))
    suspected = predicted & confirmed
    trusted = (row for o, row in verdicts.items() if o not in suspected)
    return frozenset().union(*trusted) | suspected


def predicted_self_downers(
    members: Mapping[str, Member], verdicts: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """Counted observers whose own row alone makes them lose keep-majority (as ``downing``
    counts it: more counted members accused than spared, or a tie with the lowest accused)."""
    counted = [m for m in members.values() if m.status in COUNTED]
    if not counted:
        return frozenset()
    ids = frozenset(m.uuid for m in counted)
    lowest = min(counted, key=address_order).uuid
    found = set()
    for observer, row in verdicts.items():
        if observer not in ids:
            continue  # a JOINING or EXITING observer's fate cannot be predicted: read as it is
        there = len(row & ids)
        here = len(ids) - there
        if there > here or (there == here and lowest in row):
            found.add(observer)
    return frozenset(found)
