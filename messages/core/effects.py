"""The inputs of the member step function and the effects it returns, as typed values.

Inputs are what a member can receive: its start (``JoinCluster``), a wire message (``Inbound``),
a timer it set (``GossipTick``, ``HeartbeatTick``, ``JoinAttempt``), and ``Leave``. Effects are
what it can do: messages for the transport (``SendTo``, ``Reply``, ``Broadcast``, ``CloseLink``,
``Watching``), the listener registry (``MembershipChanged``) and the ordering actor
(``MembershipReached``); a timer to set (``SetTimer``); and news for its supervisor (``Joined``,
``JoinFailed``, ``Termination``). An interpreter (the membership actor, or the simulator) carries
them out; the step function itself never does anything.
"""

from __future__ import annotations

import msgspec

from messages.commands import (
    GossipTick,
    HeartbeatTick,
    JoinAttempt,
    JoinCluster,
    Leave,
    MembershipChanged,
    Termination,
)
from messages.links import Broadcast, CloseLink, Inbound, Reply, SendTo, Watching
from messages.routing import MembershipReached

__all__ = [
    "Effect",
    "Input",
    "JoinFailed",
    "Joined",
    "SetTimer",
    "TimerMessage",
]

TimerMessage = GossipTick | HeartbeatTick | JoinAttempt
"""What a timer delivers back to the member that set it."""


class SetTimer(msgspec.Struct, frozen=True):
    """Deliver ``message`` to this member after ``delay`` seconds (a timer of the same message
    type that is still pending is replaced)."""

    delay: float
    message: TimerMessage


class Joined(msgspec.Struct, frozen=True):
    """Supervisor: this member is part of a cluster now."""


class JoinFailed(msgspec.Struct, frozen=True):
    """Supervisor: joining failed for good; ``refused`` when the cluster said no (rather than no
    seed answering in time)."""

    reason: str
    refused: bool


Input = JoinCluster | Inbound | GossipTick | HeartbeatTick | JoinAttempt | Leave
"""Everything a member's step function takes."""

Effect = (
    SendTo
    | Reply
    | Broadcast
    | CloseLink
    | Watching
    | MembershipChanged
    | MembershipReached
    | SetTimer
    | Joined
    | JoinFailed
    | Termination
)
"""Everything a member's step function asks its interpreter to do."""
