"""The events that replay a ``CurrentClusterState`` to a new subscriber.

A subscriber gets them when it asks for ``InitialState.EVENTS``.
"""

from __future__ import annotations

from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    MemberJoined,
    MemberUnreachable,
    MemberUp,
)
from messages.member import MemberStatus
from messages.membership.changes import STATUS_EVENTS

__all__ = ["replay_events"]


def replay_events(state: CurrentClusterState) -> tuple[ClusterEvent, ...]:
    """The events a subscriber would have seen to reach ``state``, all carrying its version.

    Per member in age order: MemberJoined while JOINING, MemberUp once it has been up, then the
    event of its later status (MemberLeft, MemberExited or MemberDowned); then MemberUnreachable for
    each unreachable member, then LeaderChanged if there is a leader.
    """
    version = state.version
    events: list[ClusterEvent] = []
    for member in state.members:
        if member.status is MemberStatus.JOINING:
            events.append(MemberJoined(version=version, member=member))
        if member.up_number > 0:
            events.append(MemberUp(version=version, member=member))
        status_event = STATUS_EVENTS.get(member.status)
        if status_event is not None:
            events.append(status_event(version=version, member=member))
    events.extend(
        MemberUnreachable(version=version, member=member)
        for member in state.members
        if member.uuid in state.unreachable
    )
    if state.leader is not None:
        events.append(LeaderChanged(version=version, leader=state.leader))
    return tuple(events)
