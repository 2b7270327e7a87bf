"""Messages between a node's I/O thread, its transport actor and the actors they serve (local only).

A link is a number the ``IoLoop`` gives each connection; actors name links only by it.
"""

from __future__ import annotations

import enum

import msgspec

from messages.address import Address
from messages.wire.handshake import Hello

__all__ = [
    "ClientGone",
    "LinkClosed",
    "LinkEnd",
    "LinkUp",
    "Reconnect",
    "WatchOverdue",
]


class LinkUp(msgspec.Struct, frozen=True):
    """I/O thread -> transport: an accepted link said a valid ``hello``."""

    link: int
    hello: Hello


class ClientGone(msgspec.Struct, frozen=True):
    """Transport -> ordering actor: the last link of client ``uuid`` has closed; what the
    ordering actor keeps for it (the numbering of envelopes both ways) goes."""

    uuid: str


class LinkEnd(enum.Enum):
    """Which end a link's close says something about."""

    LOCAL = "local"  # this end closed it, or it failed in a way that says nothing of the peer
    PEER = "peer"  # the peer closed or reset it
    REFUSED = "refused"  # a dial to the peer's address was refused: nothing listens there


class LinkClosed(msgspec.Struct, frozen=True):
    """I/O thread -> the link's manager: the link is gone, with the reason and the ``end`` it
    tells of; ``peer`` is the address it was dialled to (None for an accepted link)."""

    link: int
    peer: Address | None
    reason: str
    end: LinkEnd = LinkEnd.LOCAL


class Reconnect(msgspec.Struct, frozen=True):
    """Timer: a client dials the next known member."""


class WatchOverdue(msgspec.Struct, frozen=True):
    """Timer: a client's ``Watch`` on ``link`` has had no answer within ``handshake_timeout``."""

    link: int
