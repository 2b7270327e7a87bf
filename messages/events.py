"""Membership events: what listeners subscribe to, in state-version order.

``version`` is the node-local sequence number of the membership state change that produced the
event; events of one change share it and arrive in one batch, removals first.
"""

from __future__ import annotations

import enum
from typing import ClassVar

import msgspec

from messages.address import Address
from messages.member import Member, MemberStatus

__all__ = [
    "EVENT_TYPES",
    "ClientConnected",
    "ClientDisconnected",
    "ClientShutdown",
    "ClientShuttingDown",
    "ClientStarting",
    "ClusterEvent",
    "CurrentClusterState",
    "LeaderChanged",
    "LifecycleEvent",
    "LifecycleState",
    "MemberDowned",
    "MemberEvent",
    "MemberExited",
    "MemberJoined",
    "MemberLeft",
    "MemberReachable",
    "MemberRemoved",
    "MemberUnreachable",
    "MemberUp",
]


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


class LifecycleState(enum.StrEnum):
    """A client's lifecycle states, as the Hazelcast client 3.x names them (its lifecycle listeners
    get these strings)."""

    STARTING = "STARTING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    SHUTDOWN = "SHUTDOWN"


class LifecycleEvent(ClusterEvent, frozen=True, tag=True):
    """A client's lifecycle changed to ``state``; ``version`` is that of the membership state the
    client holds at that moment."""

    state: ClassVar[LifecycleState]


class ClientStarting(LifecycleEvent, frozen=True, tag=True):
    """The client starts and is about to dial its first member."""

    state: ClassVar[LifecycleState] = LifecycleState.STARTING


class ClientConnected(LifecycleEvent, frozen=True, tag=True):
    """The client is connected to ``member`` and follows its view."""

    state: ClassVar[LifecycleState] = LifecycleState.CONNECTED
    member: Address


class ClientDisconnected(LifecycleEvent, frozen=True, tag=True):
    """The client lost ``member``; it keeps its last view while it reconnects."""

    state: ClassVar[LifecycleState] = LifecycleState.DISCONNECTED
    member: Address
    reason: str = ""


class ClientShuttingDown(LifecycleEvent, frozen=True, tag=True):
    """The client is stopping (``stop()``, or it gave up connecting)."""

    state: ClassVar[LifecycleState] = LifecycleState.SHUTTING_DOWN


class ClientShutdown(LifecycleEvent, frozen=True, tag=True):
    """The client has stopped: no more connections, no more events."""

    state: ClassVar[LifecycleState] = LifecycleState.SHUTDOWN


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
    ClientStarting,
    ClientConnected,
    ClientDisconnected,
    ClientShuttingDown,
    ClientShutdown,
)
