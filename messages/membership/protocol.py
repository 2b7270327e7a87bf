"""The messages of the membership protocol between nodes: joins, gossip, heartbeats, removal
notices and a client's watch.

Field bounds (``messages.limits``) are checked while decoding; the rules across fields by
``messages.membership.validation`` before the step function acts on a message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from messages.limits import MAX_MEMBERS, Counter, MemberId, Reason
from messages.member import Member
from messages.membership.state import MembershipState
from messages.vector_clock import VectorClock

__all__ = [
    "ClientUpdate",
    "Gossip",
    "GossipStatus",
    "Heartbeat",
    "HeartbeatAck",
    "Join",
    "JoinRefused",
    "MembershipMessage",
    "ProbeRequest",
    "ProbeResult",
    "RemovalNotice",
    "Suspect",
    "Watch",
    "Welcome",
]


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
    """Only the version and seen digest: the peer answers with its full state when the digest is
    older or concurrent, with its own digest when it is newer (then the full state follows).

    ``joiner``: the sender itself while it is JOINING. A member that does not know it yet takes
    it as the sender's introduction, as it takes a joiner's full ``Gossip`` (a joiner welcomed by
    a seed that was removed before it spread the news has no other way in). It defaults to
    None, so a digest from a peer that does not send it still decodes.

    ``unseen``: once more than half of the sender's members have seen its version, ``seen`` is
    empty and ``unseen`` names those that have not (``of``), so a settled cluster's digest
    names nobody instead of every member (7.6 kB at 200 members, every gossip tick). Only a
    receiver holding the same version uses the seen set, and the same version holds the same
    members (``seen_given``). It defaults to None, so a digest from a peer that does not send
    it still decodes.
    """

    from_uuid: MemberId
    to_uuid: MemberId
    version: VectorClock
    seen: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)]
    joiner: Member | None = None
    unseen: Annotated[frozenset[MemberId], msgspec.Meta(max_length=MAX_MEMBERS)] | None = None

    @classmethod
    def of(
        cls, state: MembershipState, from_uuid: str, to_uuid: str, joiner: Member | None = None
    ) -> GossipStatus:
        """The digest of ``state``, its seen set in the shorter of the two forms."""
        seen = state.seen
        members = state.by_uuid
        if 2 * len(seen) <= len(members):
            return cls(from_uuid, to_uuid, state.version, seen, joiner)
        unseen = frozenset(uuid for uuid in members if uuid not in seen)
        return cls(from_uuid, to_uuid, state.version, frozenset(), joiner, unseen)

    def seen_given(self, members: Iterable[str]) -> frozenset[str]:
        """The sender's seen set, for a receiver whose state of the same version has
        ``members``."""
        if self.unseen is None:
            return self.seen
        unseen = self.unseen
        return frozenset(uuid for uuid in members if uuid not in unseen)


class Heartbeat(msgspec.Struct, frozen=True, tag=True):
    """Failure detector probe from ``from_uuid``; answered with ``HeartbeatAck``."""

    from_uuid: MemberId
    to_uuid: MemberId
    sequence: Counter


class HeartbeatAck(msgspec.Struct, frozen=True, tag=True):
    """Answer to a heartbeat: proves ``from_uuid`` alive to the monitoring member."""

    from_uuid: MemberId
    sequence: Counter


class ProbeRequest(msgspec.Struct, frozen=True, tag=True):
    """``from_uuid`` finds ``target_uuid`` silent and asks relay ``to_uuid`` to probe it: the
    relay heartbeats the target and answers with a ``ProbeResult`` (SWIM's indirect probe)."""

    from_uuid: MemberId
    to_uuid: MemberId
    target_uuid: MemberId
    nonce: Counter


class ProbeResult(msgspec.Struct, frozen=True, tag=True):
    """Relay ``from_uuid`` tells requester ``to_uuid`` whether ``target_uuid`` answered its
    probe within ``probe_timeout`` (``alive``, an ack) or not (a nack); ``refused``: a nack
    because the dial to the target's address was refused (no process listens there). It
    defaults to False, so a result from a peer that does not know it still decodes."""

    from_uuid: MemberId
    to_uuid: MemberId
    target_uuid: MemberId
    nonce: Counter
    alive: bool
    refused: bool = False


class Suspect(msgspec.Struct, frozen=True, tag=True):
    """``from_uuid`` finds ``to_uuid`` silent and is asking relays about it; a live suspect
    answers at once with ``HeartbeatAck(sequence=nonce)``, so a false suspicion ends fast."""

    from_uuid: MemberId
    to_uuid: MemberId
    nonce: Counter


class RemovalNotice(msgspec.Struct, frozen=True, tag=True):
    """Tells incarnation ``to_uuid`` that the cluster has downed or removed it.

    The answer to gossip or heartbeats from such a member, instead of merging or acknowledging
    them. ``state`` is the sender's membership state, the evidence: the receiver stops only when
    the notice came from a member in good standing in its own view and ``state`` shows the
    receiver DOWN or removed (``messages.membership.authority``). A downed or removed
    incarnation never comes back (its process may rejoin as a new incarnation). ``state``
    defaults to None, so a notice from a peer that does not send it still decodes (and is
    dropped).
    """

    to_uuid: MemberId
    reason: Reason
    state: MembershipState | None = None


class Watch(msgspec.Struct, frozen=True, tag=True):
    """A client asks the member to push it the membership state, now and at every change."""


class ClientUpdate(msgspec.Struct, frozen=True, tag=True):
    """A member pushes its membership state to a connected client."""

    state: MembershipState


MembershipMessage = (
    Join
    | Welcome
    | JoinRefused
    | Gossip
    | GossipStatus
    | Heartbeat
    | HeartbeatAck
    | Suspect
    | ProbeRequest
    | ProbeResult
    | RemovalNotice
    | ClientUpdate
)
"""What a member's protocol sends: joins, gossip, heartbeats and their answers."""
