"""Wire messages between nodes: the tagged union that travels in frames, as MessagePack.

The first frame on every connection is a ``Hello``; the accepting side answers ``HelloAccepted`` or
``HelloRefused`` (and closes). Nothing else is read before a valid ``Hello``. Field bounds
(``messages.limits``) are checked while decoding; the protocol rules across fields are checked by
``messages.wire.validation`` before any actor acts on a message.
"""

from __future__ import annotations

import enum
import typing
from typing import Annotated

import msgspec

from messages.address import Address
from messages.core.state import MembershipState
from messages.limits import MAX_MEMBERS, MAX_NAME_LENGTH, Counter, MemberId, Reason
from messages.member import Member
from messages.vector_clock import VectorClock

__all__ = [
    "HANDSHAKE_FRAME_BYTES",
    "WIRE_TYPES",
    "Answer",
    "Ask",
    "ClientUpdate",
    "Envelope",
    "Failure",
    "Gossip",
    "GossipStatus",
    "Heartbeat",
    "HeartbeatAck",
    "Hello",
    "HelloAccepted",
    "HelloRefused",
    "Join",
    "JoinRefused",
    "Name",
    "Publish",
    "RemovalNotice",
    "Role",
    "Tell",
    "Watch",
    "Welcome",
]

HANDSHAKE_FRAME_BYTES = 4096
"""Largest first frame an accepting side reads: a ``Hello`` is about 200 bytes, and its longest
fields (cluster name and host, 255 characters each; id, 64) fit in 4 KiB many times over."""


class Role(enum.Enum):
    """What the dialling side is: a cluster member or a watching client."""

    MEMBER = "member"
    CLIENT = "client"


class Hello(msgspec.Struct, frozen=True, tag=True):
    """Handshake from the dialling side: who it is and what it speaks."""

    cluster_name: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
    protocol_version: Counter
    uuid: MemberId
    role: Role
    address: Address | None = None


class HelloAccepted(msgspec.Struct, frozen=True, tag=True):
    """Handshake accepted by the member with ``uuid``."""

    uuid: MemberId


class HelloRefused(msgspec.Struct, frozen=True, tag=True):
    """Handshake refused; the connection closes after this frame."""

    reason: Reason


class Join(msgspec.Struct, frozen=True, tag=True):
    """A new member asks to join the cluster."""

    member: Member


class Welcome(msgspec.Struct, frozen=True, tag=True):
    """The joiner is added as JOINING; here is the state that holds it."""

    state: MembershipState


class JoinRefused(msgspec.Struct, frozen=True, tag=True):
    """The contacted member refuses the join for good (that incarnation was removed)."""

    reason: Reason


class Gossip(msgspec.Struct, frozen=True, tag=True):
    """Full membership state from ``from_uuid`` to ``to_uuid``."""

    from_uuid: MemberId
    to_uuid: MemberId
    state: MembershipState


class GossipStatus(msgspec.Struct, frozen=True, tag=True):
    """Only the version and seen digest: the peer answers with full state if it is behind or ahead."""

    from_uuid: MemberId
    to_uuid: MemberId
    version: VectorClock
    seen: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)]


class Heartbeat(msgspec.Struct, frozen=True, tag=True):
    """Failure detector probe from ``from_uuid``; answered with ``HeartbeatAck``."""

    from_uuid: MemberId
    to_uuid: MemberId
    sequence: Counter


class HeartbeatAck(msgspec.Struct, frozen=True, tag=True):
    """Answer to a heartbeat: proves ``from_uuid`` alive to the monitoring member."""

    from_uuid: MemberId
    sequence: Counter


class RemovalNotice(msgspec.Struct, frozen=True, tag=True):
    """Tells incarnation ``to_uuid`` that the cluster has downed or removed it.

    The answer to gossip or heartbeats from such a member, instead of merging or acknowledging
    them. The receiver stops: a downed or removed incarnation never comes back (its process may
    rejoin as a new incarnation).
    """

    to_uuid: MemberId
    reason: Reason


Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)]
"""An actor's registered name, a topic, or an application message type's name."""


class Tell(msgspec.Struct, frozen=True, tag=True):
    """An application message for the actor registered as ``to``; ``kind`` names its type."""

    to: Name
    kind: Name
    payload: msgspec.Raw


class Ask(msgspec.Struct, frozen=True, tag=True):
    """A request for the actor registered as ``to``; answered by ``Answer`` or ``Failure``."""

    to: Name
    kind: Name
    payload: msgspec.Raw
    ask_id: Counter


class Answer(msgspec.Struct, frozen=True, tag=True):
    """The reply to ask ``ask_id``: the remote actor's return value."""

    ask_id: Counter
    kind: Name
    payload: msgspec.Raw


class Failure(msgspec.Struct, frozen=True, tag=True):
    """Ask ``ask_id`` failed: ``error`` names why (see ``messages.wire.remote``), ``message`` says it."""

    ask_id: Counter
    error: Name
    message: Reason


class Publish(msgspec.Struct, frozen=True, tag=True):
    """A message for every subscriber of ``topic`` on every member; ``clock`` orders publishes
    across members (``messages.core.causal``)."""

    topic: Name
    kind: Name
    payload: msgspec.Raw
    clock: VectorClock


EnvelopeBody = Tell | Ask | Answer | Failure | Publish
"""What an ``Envelope`` carries: an application message, an ask's outcome, or a publish."""


class Envelope(msgspec.Struct, frozen=True, tag=True):
    """An application message from ``sender``, delivered in order (``messages.core.delivery``).

    ``sequence`` numbers the sender's envelopes to this receiver (1, 2, ...); ``version`` is the
    membership version (an encoded ``VectorClock``) the sender had seen when it sent it.
    """

    sender: MemberId
    sequence: Annotated[int, msgspec.Meta(ge=1)]
    version: msgspec.Raw
    body: EnvelopeBody


class Watch(msgspec.Struct, frozen=True, tag=True):
    """A client asks the member to push it the membership state, now and at every change."""


class ClientUpdate(msgspec.Struct, frozen=True, tag=True):
    """A member pushes its membership state to a connected client."""

    state: MembershipState


WireMessage = (
    Hello
    | HelloAccepted
    | HelloRefused
    | Join
    | Welcome
    | JoinRefused
    | Gossip
    | GossipStatus
    | Heartbeat
    | HeartbeatAck
    | RemovalNotice
    | Watch
    | ClientUpdate
    | Envelope
)
"""A message between nodes: what a frame carries (the tagged union of ``WIRE_TYPES``)."""

WIRE_TYPES: tuple[type[msgspec.Struct], ...] = typing.get_args(WireMessage)

MembershipMessage = (
    Join
    | Welcome
    | JoinRefused
    | Gossip
    | GossipStatus
    | Heartbeat
    | HeartbeatAck
    | RemovalNotice
    | ClientUpdate
)
"""What a member's protocol sends: joins, gossip, heartbeats and their answers."""
