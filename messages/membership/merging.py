"""The pieces of a membership state merge: members, reachability rows, tombstones.

Each merge here is a join (commutative, associative, idempotent) over one component; ``merge``
in ``messages.membership.state`` puts them together. Inputs are sorted the way states keep them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from messages.address import Address
from messages.limits import MAX_MEMBERS, Counter, MemberId
from messages.member import Member

__all__ = [
    "ReachabilityRow",
    "address_order",
    "merge_members",
    "merge_reachability",
    "merge_tombstones",
    "sorted_rows",
    "without_subjects",
]


class ReachabilityRow(msgspec.Struct, frozen=True):
    """One observer's failure detector verdicts; only the observer writes (and versions) its row.

    ``terminated`` (a subset of ``unreachable``) are the subjects whose accusation every
    confirmation gave as a refused dial: a crashed process, not silence (``probing``). It
    defaults to empty, so a row from a peer that does not know it still decodes.
    """

    observer: MemberId
    version: Counter
    unreachable: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)]
    terminated: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)] = frozenset()


def address_order(member: Member) -> tuple[Address, str]:
    return member.address, member.uuid


def _older_up_number(a: int, b: int) -> int:
    """The smaller nonzero up_number (0 means "not up yet")."""
    if not a or not b:
        return a or b
    return min(a, b)


def _most_advanced(a: Member, b: Member) -> Member:
    """One incarnation seen two ways: the higher status and the older up_number."""
    if a == b:
        return a
    winner = a if a.status >= b.status else b
    up_number = _older_up_number(a.up_number, b.up_number)
    return winner if winner.up_number == up_number else winner.with_status(winner.status, up_number)


def merge_members(
    a: tuple[Member, ...], b: tuple[Member, ...], removed: frozenset[str]
) -> tuple[Member, ...]:
    if a == b and not removed:
        return a
    merged: list[Member] = []
    # Both sides are sorted by (address, uuid): one incarnation's two copies end up adjacent.
    for member in sorted(a + b, key=address_order):
        if member.uuid in removed:
            continue
        if merged and merged[-1].uuid == member.uuid:
            merged[-1] = _most_advanced(merged[-1], member)
        else:
            merged.append(member)
    return tuple(merged)


def merge_reachability(
    a: tuple[ReachabilityRow, ...], b: tuple[ReachabilityRow, ...], removed: frozenset[str]
) -> tuple[ReachabilityRow, ...]:
    if a == b and not removed:
        return a
    rows: dict[str, ReachabilityRow] = {}
    for row in a + b:
        if row.observer in removed:
            continue
        stripped = without_subjects(row, removed)
        current = rows.get(row.observer)
        if current is None or stripped.version > current.version:
            rows[row.observer] = stripped
        elif stripped.version == current.version and stripped != current:
            # Cannot happen between honest peers; the union keeps the merge a join.
            rows[row.observer] = ReachabilityRow(
                row.observer,
                row.version,
                stripped.unreachable | current.unreachable,
                stripped.terminated | current.terminated,
            )
    return sorted_rows(rows.values())


def without_subjects(row: ReachabilityRow, removed: frozenset[str]) -> ReachabilityRow:
    """The row without removed subjects (the leader strips them without bumping the version)."""
    if removed.isdisjoint(row.unreachable):
        return row
    return ReachabilityRow(
        row.observer, row.version, row.unreachable - removed, row.terminated - removed
    )


def sorted_rows(rows: Iterable[ReachabilityRow]) -> tuple[ReachabilityRow, ...]:
    return tuple(sorted(rows, key=lambda row: row.observer))


def merge_tombstones(
    a: tuple[tuple[str, float], ...], b: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, float], ...]:
    """The union, one entry per uuid with its latest removal time, sorted."""
    if a == b or not b:
        return a
    if not a:
        return b
    latest = dict(a)
    for uuid, removed_at in b:
        if uuid not in latest or removed_at > latest[uuid]:
            latest[uuid] = removed_at
    return tuple(sorted(latest.items()))
