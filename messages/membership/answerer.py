"""The heartbeats a member's I/O thread may answer itself, so an actor backlog never delays them.

A member's step answers a ``Heartbeat`` or ``Suspect`` from a live member with a ``HeartbeatAck``
(``inbound``). ``HeartbeatAnswerer`` is that answer as an immutable value, for the heartbeats
whose answer does not depend on anything but the published state: addressed to this incarnation,
from a live member. The membership actor hands it to its I/O loop whenever it changes; whatever it
does not answer (a removed sender's, one for an earlier incarnation, any before this member has
joined) goes to the step as before.
"""

from __future__ import annotations

import dataclasses

from messages.member import MemberStatus
from messages.membership.node import NodeState
from messages.membership.protocol import Heartbeat, HeartbeatAck, Suspect
from messages.membership.state import MembershipState
from messages.wire.handshake import Identity, Role

__all__ = ["HeartbeatAnswerer", "answerable", "heartbeat_answerer"]


@dataclasses.dataclass(frozen=True, slots=True)
class HeartbeatAnswerer:
    """Answers heartbeats to ``uuid`` from the members in ``peers``, as the step would."""

    uuid: str
    peers: frozenset[str]

    def answer(self, message: object, link: Identity | None) -> HeartbeatAck | None:
        """The acknowledgement of ``message``, which came over a link to ``link``, or None if
        it is not one to answer here (one in another's name goes to the step, which drops it)."""
        match message:
            case (
                Heartbeat(from_uuid=sender, to_uuid=recipient, sequence=sequence)
                | Suspect(from_uuid=sender, to_uuid=recipient, nonce=sequence)
            ) if (
                recipient == self.uuid
                and sender in self.peers
                and link is not None
                and link.uuid == sender
                and link.role is Role.MEMBER
            ):
                return HeartbeatAck(from_uuid=self.uuid, sequence=sequence)
            case _:
                return None


def answerable(state: MembershipState, uuid: str) -> frozenset[str]:
    """The members of ``state`` whose heartbeats member ``uuid`` acknowledges without a step:
    the live ones (JOINING to EXITING, not tombstoned) other than itself. A DOWN or removed one
    is told that it is out instead (``inbound``)."""
    return frozenset(
        member.uuid
        for member in state.members
        if member.status <= MemberStatus.EXITING
        and member.uuid != uuid
        and not state.is_tombstoned(member.uuid)
    )


def heartbeat_answerer(node: NodeState) -> HeartbeatAnswerer | None:
    """What ``node``'s I/O thread may answer now: None until it has joined, and once it is out
    (a member out of the cluster answers nothing)."""
    if node.termination is not None or not node.joined:
        return None
    return HeartbeatAnswerer(node.uuid, answerable(node.state, node.uuid))
