"""Messages between a node's I/O thread, its transport actor and the actors they serve (local only).

A link is a number the ``IoLoop`` gives each connection; actors name links only by it.
"""

from __future__ import annotations

import msgspec

from messages.address import Address
from messages.wire.handshake import Hello

__all__ = [
    "LinkClosed",
    "LinkUp",
    "Reconnect",
    "WatchOverdue",
]


class LinkUp(msgspec.Struct, frozen=True):
    """I/O thread -> transport: an accepted link said a valid ``hello``."""

    link: int
    hello: Hello


class LinkClosed(msgspec.Struct, frozen=True):
    """I/O thread -> the link's manager: the link is gone, with the reason; ``peer`` is the
    address it was dialled to (None for an accepted link)."""

    link: int
    peer: Address | None
    reason: str


class Reconnect(msgspec.Struct, frozen=True):
    """Timer: a client dials the next known member."""


class WatchOverdue(msgspec.Struct, frozen=True):
    """Timer: a client's ``Watch`` on ``link`` has had no answer within ``handshake_timeout``."""

    link: int
