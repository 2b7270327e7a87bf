"""What a change of membership state means to listeners: the events, and the snapshot.

The one place that knows age order (oldest up member first) and which event each status fires;
``replay`` uses the same table to replay a snapshot to a new subscriber.
"""

from __future__ import annotations

from collections.abc import Iterable

from messages.address import Address
from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
    MemberUp,
)
from messages.member import Member, MemberStatus
from messages.membership.state import MembershipState

__all__ = ["STATUS_EVENTS", "age_order", "cluster_state", "diff", "leader_address"]

STATUS_EVENTS: dict[MemberStatus, type[MemberEvent]] = {
    MemberStatus.LEAVING: MemberLeft,
    MemberStatus.EXITING: MemberExited,
    MemberStatus.DOWN: MemberDowned,
}
"""The event a member's move to each later status fires (JOINING and UP have their own rules)."""


def diff(old: MembershipState, new: MembershipState, version: int) -> tuple[ClusterEvent, ...]:
    """The events that lead from ``old`` to ``new``, all tagged ``version``; removals first."""
    if old is new:
        return ()
    old_members = old.by_uuid
    new_members = new.by_uuid
    events: list[ClusterEvent] = [
        MemberRemoved(
            version, member.with_status(MemberStatus.REMOVED), previous_status=member.status
        )
        for member in old.members
        if member.uuid not in new_members
    ]
    if old.members is new.members:
        changed: tuple[Member, ...] = ()
    else:  # only changed members are sorted: this runs on every change, at any cluster size
        changed = age_order(m for m in new.members if old_members.get(m.uuid) != m)
    for member in changed:
        before = old_members.get(member.uuid)
        if before is None and member.status is MemberStatus.JOINING:
            events.append(MemberJoined(version, member))
        if member.up_number and not (before and before.up_number):
            events.append(MemberUp(version, member))
        status_event = STATUS_EVENTS.get(member.status)
        if status_event and (before is None or before.status is not member.status):
            events.append(status_event(version, member))
    old_unreachable = old.unreachable()
    new_unreachable = new.unreachable()
    if old_unreachable != new_unreachable:
        flipped = old_unreachable.symmetric_difference(new_unreachable)
        for member in age_order(new_members[u] for u in flipped if u in new_members):
            if member.uuid in new_unreachable:
                events.append(MemberUnreachable(version, member))
            else:
                events.append(MemberReachable(version, member))
    old_leader = leader_address(old)
    new_leader = leader_address(new)
    if old_leader != new_leader:
        events.append(LeaderChanged(version, new_leader))
    return tuple(events)


def cluster_state(state: MembershipState, version: int) -> CurrentClusterState:
    """A snapshot of ``state``: members in age order, the unreachable ones and the leader."""
    return CurrentClusterState(
        version=version,
        members=age_order(state.members),
        unreachable=state.unreachable(),
        leader=leader_address(state),
    )


def age_order(members: Iterable[Member]) -> tuple[Member, ...]:
    """Up members by (up_number, address), then members not yet up by address."""
    return tuple(sorted(members, key=lambda m: (m.up_number == 0, m.up_number, m.address, m.uuid)))


def leader_address(state: MembershipState) -> Address | None:
    leader = state.leader()
    return leader.address if leader else None
