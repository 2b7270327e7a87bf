"""Commands between the transport, its connection actors and the actors they serve (local only)."""

from __future__ import annotations

from typing import Any

import msgspec

from messages.address import Address


class Inbound(msgspec.Struct, frozen=True):
    """A decoded wire message from ``link`` (a ConnectionActor ref, to answer on the same link);
    ``peer`` names the remote end for log lines."""

    message: Any
    link: Any
    peer: str = "?"


class Send(msgspec.Struct, frozen=True):
    """Write ``message`` on this link."""

    message: Any


class SendTo(msgspec.Struct, frozen=True):
    """Transport: write ``message`` to the member at ``address``, dialling a link if there is none."""

    address: Address
    message: Any


class Broadcast(msgspec.Struct, frozen=True):
    """Transport: write ``message`` on every link of a connected client."""

    message: Any


class LinkUp(msgspec.Struct, frozen=True):
    """Connection -> transport: the handshake of an accepted link succeeded (``hello`` is the peer's)."""

    link: Any
    hello: Any


class LinkClosed(msgspec.Struct, frozen=True):
    """Connection -> transport and owner: the link is gone, with the reason."""

    link: Any
    peer: Address | None
    reason: str


class CloseLink(msgspec.Struct, frozen=True):
    """Transport: close the dialled link to ``address`` (the next send dials a fresh one)."""

    address: Address
    reason: str


class Accepted(msgspec.Struct, frozen=True):
    """Acceptor thread -> transport: a new inbound socket."""

    sock: Any


class IdleTick(msgspec.Struct, frozen=True):
    """Timer: close links that have been idle too long."""


class Reconnect(msgspec.Struct, frozen=True):
    """Timer: a client dials the next known member."""


class BlockPeers(msgspec.Struct, frozen=True):
    """Transport (fault injection for partition tests): drop every send to these addresses.

    Like packets lost in a network partition, not like a refused connection: a dialled link that
    loses a frame this way stays stalled, even after the block is lifted, until it is closed (so
    a test sees what a TCP connection stuck in retransmission does to the protocol).
    """

    addresses: frozenset[Address]
