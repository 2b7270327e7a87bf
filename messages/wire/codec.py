"""Every message between nodes as one tagged union, and its codec."""

from __future__ import annotations

import typing

import msgspec

from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Join,
    JoinRefused,
    ProbeRequest,
    ProbeResult,
    RemovalNotice,
    Suspect,
    Watch,
    Welcome,
)
from messages.messaging.envelope import Envelope, Envelopes
from messages.wire.framing import Codec
from messages.wire.handshake import (
    Hello,
    HelloAccepted,
    HelloChallenge,
    HelloProof,
    HelloRefused,
)

__all__ = [
    "WIRE_CODEC",
    "WireMessage",
]

WireMessage = (
    Hello
    | HelloAccepted
    | HelloRefused
    | HelloChallenge
    | HelloProof
    | Join
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
    | Watch
    | ClientUpdate
    | Envelope
    | Envelopes
)
"""A message between nodes: what a frame carries (the tagged union of ``WIRE_TYPES``)."""

WIRE_TYPES: tuple[type[msgspec.Struct], ...] = typing.get_args(WireMessage)

WIRE_CODEC = Codec(WIRE_TYPES)
"""The codec of every message between nodes."""
