"""The wire envelope: a message body stamped with its sender's vector clock."""

from __future__ import annotations

from typing import Any

import msgspec

from messages.vector_clock import VectorClock


class Envelope(msgspec.Struct, frozen=True):
    """One message from ``sender``, carrying the sender's clock right after this send.

    ``clock[sender]`` is the message's sequence number from that sender (1, 2, ...); every other
    entry says how many messages of that replica the sender had delivered before sending. The clock
    is never mutated once it is in an envelope.
    """

    sender: str
    clock: VectorClock
    body: Any
