"""Membership events: what listeners subscribe to, in state-version order.

``version`` is the node-local sequence number of the membership state change that produced the
event; events of one change share it and arrive in one batch, removals first.
"""

from __future__ import annotations

import msgspec

from messages.address import Address
from messages.member import Member, MemberStatus


class ClusterEvent(msgspec.Struct, frozen=True, tag=True):
    """Base of all membership events; subscribe to it to receive every event type."""

    version: int


class MemberEvent(ClusterEvent, frozen=True, tag=True):
    """An event about one member; ``member`` is the member as of this event."""

    member: Member


class MemberJoined(MemberEvent, frozen=True, tag=True):
    """A new member is JOINING."""


class MemberUp(MemberEvent, frozen=True, tag=True):
    """The leader moved a member to UP (Hazelcast's ``member_added``)."""


class MemberLeft(MemberEvent, frozen=True, tag=True):
    """A member is LEAVING gracefully."""


class MemberExited(MemberEvent, frozen=True, tag=True):
    """A leaving member is EXITING."""


class MemberDowned(MemberEvent, frozen=True, tag=True):
    """A member was marked DOWN."""


class MemberRemoved(MemberEvent, frozen=True, tag=True):
    """A member is gone for good (Hazelcast's ``member_removed``)."""

    previous_status: MemberStatus = MemberStatus.UP


class MemberUnreachable(MemberEvent, frozen=True, tag=True):
    """Some observer's failure detector marks the member unreachable."""


class MemberReachable(MemberEvent, frozen=True, tag=True):
    """Every observer sees the member as reachable again."""


class LeaderChanged(ClusterEvent, frozen=True, tag=True):
    """The derived leader changed (``leader`` is None while there is none)."""

    leader: Address | None


class CurrentClusterState(msgspec.Struct, frozen=True):
    """A snapshot: every member not yet removed (age order), who is unreachable, the leader.

    ``up_members`` are those that have had ``MemberUp`` (``up_number > 0``): the Hazelcast view.
    """

    version: int
    members: tuple[Member, ...] = ()
    unreachable: frozenset[str] = frozenset()
    leader: Address | None = None

    @property
    def up_members(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.up_number > 0)


EVENT_TYPES: tuple[type[ClusterEvent], ...] = (
    MemberJoined,
    MemberUp,
    MemberLeft,
    MemberExited,
    MemberDowned,
    MemberRemoved,
    MemberUnreachable,
    MemberReachable,
    LeaderChanged,
)
