"""Wire messages between nodes: the tagged union that travels in frames, as MessagePack.

The first frame on every connection is a ``Hello``; the accepting side answers ``HelloAccepted`` or
``HelloRefused`` (and closes). Nothing else is read before a valid ``Hello``.
"""

from __future__ import annotations

import enum

import msgspec

from messages.address import Address
from messages.member import Member
from messages.state import MembershipState
from messages.vector_clock import VectorClock


class Role(enum.Enum):
    """What the dialling side is: a cluster member or a watching client."""

    MEMBER = "member"
    CLIENT = "client"


class Hello(msgspec.Struct, frozen=True, tag=True):
    """Handshake from the dialling side: who it is and what it speaks."""

    cluster_name: str
    protocol_version: int
    uuid: str
    role: Role
    address: Address | None = None


class HelloAccepted(msgspec.Struct, frozen=True, tag=True):
    """Handshake accepted by the member with ``uuid``."""

    uuid: str


class HelloRefused(msgspec.Struct, frozen=True, tag=True):
    """Handshake refused; the connection closes after this frame."""

    reason: str


class Join(msgspec.Struct, frozen=True, tag=True):
    """A new member asks to join the cluster."""

    member: Member


class Welcome(msgspec.Struct, frozen=True, tag=True):
    """The joiner is added as JOINING; here is the state that holds it."""

    state: MembershipState


class JoinRefused(msgspec.Struct, frozen=True, tag=True):
    """The contacted member refuses the join for good (that incarnation was removed)."""

    reason: str


class Gossip(msgspec.Struct, frozen=True, tag=True):
    """Full membership state from ``from_uuid`` to ``to_uuid``."""

    from_uuid: str
    to_uuid: str
    state: MembershipState


class GossipStatus(msgspec.Struct, frozen=True, tag=True):
    """Only the version and seen digest: the peer answers with full state if it is behind or ahead."""

    from_uuid: str
    to_uuid: str
    version: VectorClock
    seen: frozenset[str]


class Heartbeat(msgspec.Struct, frozen=True, tag=True):
    """Failure detector probe from ``from_uuid``; answered with ``HeartbeatAck``."""

    from_uuid: str
    to_uuid: str
    sequence: int


class HeartbeatAck(msgspec.Struct, frozen=True, tag=True):
    """Answer to a heartbeat: proves ``from_uuid`` alive to the monitoring member."""

    from_uuid: str
    sequence: int


class Watch(msgspec.Struct, frozen=True, tag=True):
    """A client asks the member to push it the membership state, now and at every change."""


class ClientUpdate(msgspec.Struct, frozen=True, tag=True):
    """A member pushes its membership state to a connected client."""

    state: MembershipState


WIRE_TYPES: tuple[type[msgspec.Struct], ...] = (
    Hello,
    HelloAccepted,
    HelloRefused,
    Join,
    Welcome,
    JoinRefused,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Watch,
    ClientUpdate,
)
