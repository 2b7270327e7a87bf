"""The membership state and its pure protocol rules: merge, convergence, leader actions, events.

Gossip is versioned by vector clocks in the manner of Akka Cluster (docs/architecture.md, "Gossip").
Everything here is pure: states are immutable values, time is passed in, nothing blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Set
from typing import Annotated, Any

import msgspec

from messages.address import Address
from messages.limits import MAX_MEMBERS, MAX_TOMBSTONES, MemberId
from messages.member import Member, MemberStatus
from messages.membership.merging import (
    ReachabilityRow,
    address_order,
    merge_members,
    merge_reachability,
    merge_tombstones,
    sorted_rows,
)
from messages.membership.verdicts import counted_unreachable
from messages.vector_clock import Causality, VectorClock

__all__ = [
    "DOWN",
    "EXITING",
    "JOINING",
    "LEAVING",
    "REMOVABLE",
    "REMOVED",
    "UP",
    "MembershipState",
    "ReachabilityRow",
    "merge",
]


JOINING = MemberStatus.JOINING
UP = MemberStatus.UP
LEAVING = MemberStatus.LEAVING
EXITING = MemberStatus.EXITING
DOWN = MemberStatus.DOWN
REMOVED = MemberStatus.REMOVED

# The moves set_status accepts; the leader's moves to REMOVED happen only in leader_actions.
_FORWARD_MOVES: dict[MemberStatus, frozenset[MemberStatus]] = {
    JOINING: frozenset({UP, LEAVING, DOWN}),
    UP: frozenset({LEAVING, DOWN}),
    LEAVING: frozenset({EXITING, DOWN}),
    EXITING: frozenset({DOWN}),
    DOWN: frozenset(),
    REMOVED: frozenset(),
}
# Members that must have seen a version for convergence, and that can lead.
_CONVERGING = frozenset({UP, LEAVING})
# Members that may be unreachable at convergence, and that the leader removes.
REMOVABLE = frozenset({EXITING, DOWN})
# Cached derived values of a state, and the fields each one is derived from.
_CACHE_DEPENDENCIES: dict[str, frozenset[str]] = {
    "_members_by_uuid": frozenset({"members"}),
    "_tombstoned": frozenset({"tombstones"}),
    "_unreachable": frozenset({"members", "reachability"}),
    "_settled": frozenset({"members", "seen", "reachability"}),
}


class MembershipState(msgspec.Struct, frozen=True, dict=True):
    """The gossiped membership: members, who has seen this version, reachability, tombstones.

    ``members`` are sorted by (address, uuid) and never hold REMOVED members: a removed member
    leaves a tombstone instead, which keeps it from ever coming back. The vector clock ``version``
    is never mutated. Lookups are cached per state value (the cache is not part of the value).
    """

    members: Annotated[tuple[Member, ...], msgspec.Meta(max_length=MAX_MEMBERS)] = ()
    seen: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)] = frozenset()
    reachability: Annotated[tuple[ReachabilityRow, ...], msgspec.Meta(max_length=MAX_MEMBERS)] = ()
    version: VectorClock = msgspec.field(default_factory=VectorClock)
    tombstones: Annotated[
        tuple[tuple[MemberId, float], ...], msgspec.Meta(max_length=MAX_TOMBSTONES)
    ] = ()

    @classmethod
    def initial(cls, self_member: Member) -> MembershipState:
        """The state of a node that has not joined yet: only itself, JOINING."""
        _check_joining(self_member)
        return cls(
            members=(self_member,),
            seen=frozenset({self_member.uuid}),
            version=VectorClock({self_member.uuid: 1}),
        )

    # Queries

    def member(self, uuid: str) -> Member | None:
        return self._members_by_uuid.get(uuid)

    @property
    def by_uuid(self) -> Mapping[str, Member]:
        """The members by uuid (cached with the state; do not modify)."""
        return self._members_by_uuid

    def member_at(self, address: Address) -> Member | None:
        """The member at ``address``; the live incarnation when a restarted one is still DOWN."""
        found = None
        for member in self.members:
            if member.address == address:
                if member.status is not DOWN:
                    return member
                found = found or member
        return found

    def is_tombstoned(self, uuid: str) -> bool:
        return uuid in self._tombstoned

    @property
    def tombstoned(self) -> frozenset[str]:
        """The uuids of the removed members this state remembers."""
        return self._tombstoned

    def removal_reason(self, uuid: str) -> str | None:
        """Why incarnation ``uuid`` is out of the cluster for good (removed or DOWN), else None."""
        if uuid in self._tombstoned:
            return f"member {uuid} was removed from the cluster"
        member = self._members_by_uuid.get(uuid)
        if member is not None and member.status is DOWN:
            return f"member {uuid} was downed by the cluster"
        return None

    def unreachable(self) -> frozenset[str]:
        """Members that count as unreachable, read from the table alone (``verdicts``): whoever a
        trusted observer marks, and the suspects whose verdicts are not trusted. Only members
        that are not DOWN observe: a downed member's last verdicts (often all others, from its
        side of a partition) would otherwise block convergence for good (as in Akka)."""
        return self._unreachable

    def reachability_row(self, observer: str) -> frozenset[str]:
        """The subjects ``observer`` currently marks unreachable (empty when it has no row)."""
        for row in self.reachability:
            if row.observer == observer:
                return row.unreachable
        return frozenset()

    def terminated_by(self, observer: str) -> frozenset[str]:
        """The subjects ``observer`` currently marks as crashed (``ReachabilityRow.terminated``)."""
        for row in self.reachability:
            if row.observer == observer:
                return row.terminated
        return frozenset()

    def is_converged(self) -> bool:
        """Every UP/LEAVING member has seen this version; every unreachable one is DOWN/EXITING."""
        unreachable = self._unreachable
        for member in self.members:
            if member.uuid in unreachable:
                if member.status not in REMOVABLE:
                    return False
            elif member.status in _CONVERGING and member.uuid not in self.seen:
                return False
        return True

    def is_settled(self) -> bool:
        """Nothing under way: every member is UP and has seen this version, and no observer marks
        any member unreachable. (A member of a settled cluster gossips at a slower rhythm,
        ``Step.gossip_tick``.)"""
        return self._settled

    def leader(self) -> Member | None:
        """First reachable UP/LEAVING member by address, else the first reachable JOINING one."""
        unreachable = self._unreachable
        fallback = None
        for member in self.members:
            if member.uuid in unreachable:
                continue
            if member.status in _CONVERGING:
                return member
            if fallback is None and member.status is JOINING:
                fallback = member
        return fallback

    # Local changes: each one is a new version by ``by`` that only ``by`` has seen.

    def add_joining(self, member: Member, by: str) -> MembershipState:
        """Add a JOINING member; an older incarnation at its address is marked DOWN in this step.

        A no-op when the uuid is already present or tombstoned (a removed member never returns).
        """
        self._require_member(by)
        _check_joining(member)
        if member.uuid in self._members_by_uuid or self.is_tombstoned(member.uuid):
            return self
        members = [
            old.with_status(DOWN)
            if old.address == member.address and old.status is not DOWN
            else old
            for old in self.members
        ]
        members.append(member)
        members.sort(key=address_order)
        return self.local_change(by, members=tuple(members))

    def set_status(self, uuid: str, status: MemberStatus, by: str) -> MembershipState:
        """Move a member forward in its lifecycle (moving to UP gives it the next up_number)."""
        self._require_member(by)
        if not isinstance(status, MemberStatus):
            raise TypeError(f"status must be a MemberStatus, not {type(status).__name__}")
        if status is REMOVED:
            raise ValueError("A member becomes REMOVED only through leader_actions")
        member = self._require_member(uuid)
        if member.status is status:
            return self
        if status not in _FORWARD_MOVES[member.status]:
            raise ValueError(
                f"Cannot move member {uuid} from {member.status.name} to {status.name}: only"
                " forward moves JOINING->UP->LEAVING->EXITING, or any live status to DOWN,"
                " are allowed"
            )
        up_number = self.next_up_number() if status is UP and not member.up_number else None
        moved = member.with_status(status, up_number)
        members = tuple(moved if m.uuid == uuid else m for m in self.members)
        return self.local_change(by, members=members)

    def set_reachability(
        self, observer: str, unreachable: Set[str], terminated: Set[str] = frozenset()
    ) -> MembershipState:
        """Replace ``observer``'s row with the subjects it now finds unreachable, ``terminated``
        those of them it found crashed (row version + 1)."""
        self._require_member(observer)
        if isinstance(unreachable, str) or not isinstance(unreachable, Set):
            raise TypeError(
                f"unreachable must be a set of member uuids, not {type(unreachable).__name__}"
            )
        subjects = frozenset(unreachable)
        if observer in subjects:
            raise ValueError(f"Observer {observer} cannot mark itself unreachable")
        crashed = frozenset(terminated)
        if not crashed <= subjects:
            raise ValueError(f"Observer {observer} marks terminated members it finds reachable")
        rows = {row.observer: row for row in self.reachability}
        current = rows.get(observer)
        if current is None and not subjects:
            return self
        if current is not None and (subjects, crashed) == (current.unreachable, current.terminated):
            return self
        rows[observer] = ReachabilityRow(
            observer, (current.version if current else 0) + 1, subjects, crashed
        )
        return self.local_change(observer, reachability=sorted_rows(rows.values()))

    # Gossip

    def seen_by(self, uuid: str) -> MembershipState:
        """This version, also seen by member ``uuid`` (a no-op for a non-member)."""
        if uuid in self.seen or uuid not in self._members_by_uuid:
            return self
        return self.replaced(seen=self.seen | {uuid})

    def with_seen(self, seen: Set[str]) -> MembershipState:
        """This version, also seen by the members in ``seen``.

        ``seen`` is the digest of a same-version peer.
        """
        added = frozenset(seen).intersection(self._members_by_uuid).difference(self.seen)
        if not added:
            return self
        return self.replaced(seen=self.seen | added)

    def receive(self, remote: MembershipState, self_uuid: str) -> tuple[MembershipState, Causality]:
        """Take in a gossiped state; returns the new local state and ``remote`` relative to ours.

        AFTER adopts the remote state, BEFORE keeps ours, SAME unions the seen sets, CONCURRENT
        merges; the caller should send its state back on BEFORE and CONCURRENT.
        """
        if not isinstance(remote, MembershipState):
            raise TypeError(f"remote must be a MembershipState, not {type(remote).__name__}")
        causality = _ordered_by_tombstones(remote.version.compare(self.version), self, remote)
        if causality is Causality.AFTER:
            received = remote
        elif causality is Causality.BEFORE:
            received = self
        elif causality is Causality.SAME:
            received = self.with_seen(remote.seen)
        else:
            received = self._merge_concurrent(remote, self_uuid)
        return received.seen_by(self_uuid), causality

    def _merge_concurrent(self, remote: MembershipState, self_uuid: str) -> MembershipState:
        """merge(), made a local change by ``self_uuid`` when pruning left its version ambiguous.

        Removing a member prunes its clock entry, which forgets which of its changes a version
        holds: a merge that prunes entries can come out with a version that equals, or is even
        dominated by, a version of other content (two sides that removed each other's members
        merge to an empty clock), and a later AFTER adoption would silently drop members. When
        such a merge yields content new to both sides, bumping our own entry gives it a version
        no other state has. A merge that only brings one side up to date keeps that side when
        the version is the same (with its seen set).
        """
        merged = merge(self, remote)
        for side in (remote, self):
            if merged.members == side.members and merged.reachability == side.reachability:
                if merged.version != side.version:
                    return merged
                if merged.tombstones == side.tombstones:
                    return side
                return side.replaced(tombstones=merged.tombstones)
        pruned = any(
            uuid in self.version.timestamps or uuid in remote.version.timestamps
            for uuid in merged._tombstoned
        )
        if not pruned or self_uuid not in merged._members_by_uuid:
            return merged
        return merged.local_change(self_uuid)

    # Helpers

    def _require_member(self, uuid: str) -> Member:
        member = self._members_by_uuid.get(uuid)
        if member is None:
            raise ValueError(f"{uuid!r} is not a member of this membership state")
        return member

    def next_up_number(self) -> int:
        """The up_number the next member to move to UP gets."""
        return 1 + max((m.up_number for m in self.members), default=0)

    def local_change(self, by: str, **changes: Any) -> MembershipState:
        """A copy with ``changes`` as a new version by ``by``, seen by ``by`` alone."""
        version = changes.pop("version", self.version)
        return self.replaced(version=version.increment(by), seen=frozenset({by}), **changes)

    def replaced(self, **changes: Any) -> MembershipState:
        """A copy with ``changes``, keeping the cached values that do not depend on them."""
        replaced = msgspec.structs.replace(self, **changes)
        cache = self.__dict__
        for name, dependencies in _CACHE_DEPENDENCIES.items():
            if name in cache and dependencies.isdisjoint(changes):
                replaced.__dict__[name] = cache[name]
        return replaced

    @functools.cached_property
    def _members_by_uuid(self) -> dict[str, Member]:
        return {member.uuid: member for member in self.members}

    @functools.cached_property
    def _tombstoned(self) -> frozenset[str]:
        return frozenset(uuid for uuid, _ in self.tombstones)

    @functools.cached_property
    def _settled(self) -> bool:
        seen = self.seen
        return all(m.status is UP and m.uuid in seen for m in self.members) and not any(
            row.unreachable for row in self.reachability
        )

    @functools.cached_property
    def _unreachable(self) -> frozenset[str]:
        return counted_unreachable(self._members_by_uuid, self.reachability)


def _ordered_by_tombstones(
    causality: Causality, local: MembershipState, remote: MembershipState
) -> Causality:
    """``causality`` (``remote`` against ``local``), or CONCURRENT where the versions cannot
    be trusted: removing a member prunes its clock entry, so a version can come to equal, or
    dominate, one whose removals it does not hold. Adopting it would bring a removed member
    back, keeping it would drop the other side's removals, and equal versions could differ in
    their tombstones for ever (hypothesis found all three); the merge, a join, does neither."""
    if causality is Causality.CONCURRENT or local.tombstones == remote.tombstones:
        return causality
    if causality is Causality.AFTER and remote._tombstoned >= local._tombstoned:
        return causality
    if causality is Causality.BEFORE and local._tombstoned >= remote._tombstoned:
        return causality
    return Causality.CONCURRENT


def merge(a: MembershipState, b: MembershipState) -> MembershipState:
    """The merge of two CONCURRENT states: a join, so commutative, associative and idempotent.

    Tombstones are united and win: a tombstoned member, its clock entry and its reachability row
    are dropped. Each member keeps its most advanced status and its oldest up_number. A member on
    one side only is kept, even DOWN/EXITING: Akka drops those, but that rule predates tombstones,
    breaks associativity and forgets a downed member without a tombstone. Each observer's row
    with the higher version wins. Nobody has seen the result yet.
    """
    tombstones = merge_tombstones(a.tombstones, b.tombstones)
    removed = frozenset(uuid for uuid, _ in tombstones)
    version = a.version.merge(b.version)
    if not removed.isdisjoint(version.timestamps):
        version = version.without(removed)
    return MembershipState(
        members=merge_members(a.members, b.members, removed),
        reachability=merge_reachability(a.reachability, b.reachability, removed),
        version=version,
        tombstones=tombstones,
    )


def _check_joining(member: Member) -> None:
    if not isinstance(member, Member):
        raise TypeError(f"member must be a Member, not {type(member).__name__}")
    if member.status is not JOINING or member.up_number:
        raise ValueError(
            f"A new member must be JOINING with up_number 0, got {member.status.name}"
            f" with up_number {member.up_number}"
        )
