"""Keep-majority downing: the pure decision of what to do about unreachable members.

The rule is the keep-majority of Akka's (Pekko's) split brain resolver. Only UP and LEAVING
members count: a JOINING member may be unknown on the other side of a partition, and a DOWN or
EXITING one is on its way out. The side with more counted members reachable keeps the cluster
and downs the others; on a tie, the side holding the counted member with the lowest address does.
A verdict to keep is then checked against membership changes in flight when the partition struck:
counting this side as small as it could be (no LEAVING members, which may be EXITING on the other
side) and the other side as large (with its JOINING members, which may be UP there). If that changes
the verdict, this side downs itself too: never two live clusters, at worst none.

Who counts as unreachable is read from the gossiped table alone (``verdicts``: a suspect, an
observer that will lose by its own row and that others accuse, counts unreachable and its verdicts
are set aside), so every member holding one table keeps the same side; a member that side downs
downs itself.

Why this is safe: the leader moves a member to UP, or LEAVING to EXITING, only once every UP and
LEAVING member has seen the state before the move, so the two sides count the same members but
for those moves, and the second count covers them. Downing a member is itself such a decision,
taken by one side at a time. Those moves wait for no JOINING member, so a member JOINING in its own
view may hold a state older than any of them (the leader's UP members since gone, say): it never
keeps, it waits for a keeper to take it in or down it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Set

import msgspec

from messages.member import Member, MemberStatus
from messages.membership.state import MembershipState
from messages.membership.verdicts import (
    COUNTED,
    gone_members,
    only_crashes,
    readings_set_aside,
)
from messages.settings import Settings

__all__ = [
    "Decision",
    "Verdict",
    "down_members",
    "keep_majority",
    "keeps_on_a_reading_set_aside",
    "no_side_keeps",
    "pending_unreachable",
    "stable_window",
]


class Verdict(enum.Enum):
    """What this side does once the unreachable set has been stable for ``down_after``."""

    WAIT = "wait"  # nothing unreachable, or not stable long enough
    DOWN_UNREACHABLE = "down-unreachable"  # this side keeps the cluster: down the others
    DOWN_SELF = "down-self"  # this side is the minority (or might be): down itself and shut down


class Decision(msgspec.Struct, frozen=True):
    """A verdict, the members to down when it is DOWN_UNREACHABLE, and the counts behind it."""

    verdict: Verdict
    unreachable: frozenset[str]
    reachable_count: int
    total: int


def down_members(state: MembershipState, uuids: frozenset[str], by: str) -> MembershipState:
    """``state`` with each member of ``uuids`` that is still live marked DOWN by ``by``.

    Total: uuids that are not members, or that are DOWN already, are skipped (and nothing
    changes when ``by`` is not a member), so no state the wire can bring makes downing raise.
    """
    if state.member(by) is None:
        return state
    for uuid in sorted(uuids):
        member = state.member(uuid)
        if member is not None and member.status < MemberStatus.DOWN:
            state = state.set_status(uuid, MemberStatus.DOWN, by=by)
    return state


def pending_unreachable(state: MembershipState) -> frozenset[str]:
    """Unreachable members not yet DOWN or EXITING (those still block convergence)."""
    unreachable = state.unreachable()
    return frozenset(
        m.uuid
        for m in state.members
        if m.uuid in unreachable and m.status not in (MemberStatus.DOWN, MemberStatus.EXITING)
    )


def stable_window(state: MembershipState, settings: Settings) -> float:
    """How long the pending unreachable set must stay the same before keep-majority decides:
    ``crash_down_after`` when every accusation is a confirmed crash (``verdicts.only_crashes``),
    else ``down_after``."""
    if only_crashes(state.by_uuid, state.reachability):
        return min(settings.crash_down_after, settings.down_after)
    return settings.down_after


def keep_majority(
    state: MembershipState,
    self_uuid: str,
    stable_for: float,
    down_after: float,
    silent: Set[str] = frozenset(),
) -> Decision:
    """The decision of member ``self_uuid``, whose view is ``state``, once the set of pending
    unreachable members has not changed for ``stable_for`` seconds. The survivors depend on
    the state alone; ``self_uuid`` only says on which side this member is: one the keeping
    side downs (a suspect that cannot hear the others, say) downs itself. ``silent`` are the
    members this one finds silent but has not published (no relay has confirmed it yet): they
    count as unreachable here, for this member's own verdict only, so a member that cannot
    hear a majority never keeps. Nor does it down itself on them alone: a verdict that only
    they turn from keep into down-self waits, since this member's own picture is still
    changing (each silence is confirmed, published or answered within a few rounds) and
    waiting keeps nobody."""
    pending = pending_unreachable(state)
    published = state.unreachable()
    counted = [m for m in state.members if m.status in COUNTED]
    reachable = sum(1 for m in counted if m.uuid not in published | silent)
    if not pending or stable_for < down_after:
        verdict = Verdict.WAIT
    elif not counted:
        verdict = Verdict.DOWN_SELF  # nobody counts: nobody can hold a majority
    else:
        verdict = _verdict(state, self_uuid, pending, counted, published | silent)
        if verdict is Verdict.DOWN_SELF and silent - published:
            on_the_table = _verdict(state, self_uuid, pending, counted, published)
            if on_the_table is Verdict.DOWN_UNREACHABLE:
                verdict = Verdict.WAIT  # lost only on silences not confirmed yet
        elif verdict is Verdict.DOWN_UNREACHABLE and _joining(state, self_uuid):
            verdict = Verdict.WAIT  # its view may predate moves made without it
    return Decision(verdict, pending, reachable, len(counted))


def keeps_on_a_reading_set_aside(
    state: MembershipState, self_uuid: str, silent: Set[str] = frozenset()
) -> bool:
    """Whether this member would keep on one of the table's readings with the rows of the
    fewest members set aside, witnesses or not (``verdicts.readings_set_aside``): rows such a
    reading sets aside may be stale (members nobody hears keep, in every table, the row they
    had when the receive-side filter began to drop their gossip). ``silent`` counts against
    this member, as in ``keep_majority``. Not a verdict to keep: ``detection`` only lets a
    self-down wait on it, bounded."""
    counted = [m for m in state.members if m.status in COUNTED]
    if not counted:
        return False
    for reading in readings_set_aside(state.by_uuid, state.reachability):
        pending = frozenset(
            m.uuid
            for m in state.members
            if m.uuid in reading and m.status not in (MemberStatus.DOWN, MemberStatus.EXITING)
        )
        verdict = _verdict(state, self_uuid, pending, counted, reading | silent)
        if pending and verdict is Verdict.DOWN_UNREACHABLE:
            return True
    return False


def no_side_keeps(state: MembershipState, self_uuid: str, unreachable: Set[str]) -> bool:
    """Whether no other side can keep the cluster against this member (not ``unreachable``
    itself), whose own side has lost keep-majority: the members that may be over there could
    not hold a majority even counted as generously to them as changes in flight allow.

    Over there may be every member of ``unreachable`` and every DOWN one (maybe not DOWN there
    yet), of any status (a JOINING one may be UP there, an EXITING one still LEAVING), but for
    those whose process is gone (``verdicts.gone_members``: a refused dial, confirmed), which no
    side can count reachable. They count against themselves and this side's UP members only:
    not the gone (maybe DOWN there already), nor this side's LEAVING members (maybe EXITING
    there) or JOINING ones. A tie is theirs, unless the lowest address of all of those is an UP
    member of this side. Then no member holding this picture can keep, so this side's
    self-down protects nobody yet (``detection`` lets it wait, bounded)."""
    if self_uuid in unreachable:
        return False
    gone = gone_members(state.by_uuid, state.reachability)
    live = [m for m in state.members if m.uuid not in gone]
    there = [m for m in live if m.uuid in unreachable or m.status is MemberStatus.DOWN]
    here = [m for m in live if m.uuid not in unreachable and m.status is MemberStatus.UP]
    if not here:
        return False
    ours = _lowest([*there, *here]) in here
    return _majority(len(there), len(here), ours) is Verdict.DOWN_SELF


def _verdict(
    state: MembershipState,
    self_uuid: str,
    pending: Set[str],
    counted: list[Member],
    unreachable: Set[str],
) -> Verdict:
    """Keep-majority with ``unreachable`` counted as such: keep only when this member is not
    pending itself and this side keeps with the changes in flight as well."""
    reachable = sum(1 for m in counted if m.uuid not in unreachable)
    lowest_unreachable = _lowest(counted).uuid in unreachable
    verdict = _majority(reachable, len(counted) - reachable, lowest_unreachable)
    if verdict is Verdict.DOWN_UNREACHABLE and (
        self_uuid in pending or not _keeps_with_changes_in_flight(state, unreachable)
    ):
        return Verdict.DOWN_SELF
    return verdict


def _keeps_with_changes_in_flight(state: MembershipState, unreachable: Set[str]) -> bool:
    """This side still keeps when it counts itself without its LEAVING members and the other side
    with its JOINING ones; a tie goes by the lowest address of all of them, for a joiner moved UP
    over there takes part in the other side's tie-break."""
    this_side = [m for m in state.members if m.status is MemberStatus.UP]
    that_side = [
        m
        for m in state.members
        if m.uuid in unreachable and m.status in (MemberStatus.JOINING, *COUNTED)
    ]
    if not this_side:
        return False
    here = sum(1 for m in this_side if m.uuid not in unreachable)
    lowest_unreachable = _lowest(this_side + that_side).uuid in unreachable
    return _majority(here, len(that_side), lowest_unreachable) is Verdict.DOWN_UNREACHABLE


def _joining(state: MembershipState, uuid: str) -> bool:
    member = state.member(uuid)
    return member is not None and member.status is MemberStatus.JOINING


def _majority(here: int, there: int, lowest_unreachable: bool) -> Verdict:
    """More counted members here: keep; fewer: down self; a tie: the side of the lowest address."""
    if here != there:
        return Verdict.DOWN_UNREACHABLE if here > there else Verdict.DOWN_SELF
    return Verdict.DOWN_SELF if lowest_unreachable else Verdict.DOWN_UNREACHABLE


def _lowest(members: Iterable[Member]) -> Member:
    return min(members, key=lambda m: (m.address, m.uuid))
