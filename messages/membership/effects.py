"""The inputs of the member step function and the effects it returns, as typed values.

Inputs are what a member can receive: its start (``JoinCluster``), the seeds a discovery found
while it joins (``SeedsFound``), a wire message (``Inbound``),
news from its transport that a peer's end is gone (``PeerGone``),
a timer it set (``GossipTick``, ``HeartbeatTick``, ``ProbeTick``, ``JoinAttempt``,
``LeaveTimedOut``), ``Leave``, and an operator's ``LeaveMember`` or ``DownMember`` about any
member (from the HTTP management endpoint). Effects are what it can do: messages for the transport
(``SendTo``, ``Reply``, ``Broadcast``, ``CloseLink``, ``Disconnect``, ``Watching``), the listener
registry (``MembershipChanged``) and the ordering actor (``MembershipReached``); a timer to set
(``SetTimer``); news for its supervisor (``Joined``, ``JoinFailed``, ``Termination``); and news for
whoever watches it run, which changes nothing elsewhere (``Dropped``, ``JoinTried``, ``Suspected``,
``Unconfirmed``, ``Paused``, ``Downing``). An interpreter (the membership actor, or the
simulator) carries them out (the actor logs the news, the simulator counts it); the step function
itself never does anything, not even log.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec

from messages.address import Address
from messages.events import ClusterEvent, CurrentClusterState
from messages.member import Member
from messages.membership.protocol import MembershipMessage
from messages.messaging.envelope import Envelope
from messages.vector_clock import VectorClock
from messages.wire.handshake import Identity

__all__ = [
    "Broadcast",
    "CloseLink",
    "Disconnect",
    "DownMember",
    "Downing",
    "Dropped",
    "Effect",
    "GossipTick",
    "HeartbeatTick",
    "Inbound",
    "Input",
    "JoinAttempt",
    "JoinCluster",
    "JoinFailed",
    "JoinTried",
    "Joined",
    "Leave",
    "LeaveMember",
    "LeaveTimedOut",
    "MembershipChanged",
    "MembershipReached",
    "OnSent",
    "Outbound",
    "Paused",
    "PeerGone",
    "ProbeTick",
    "Reply",
    "SeedsFound",
    "SendTo",
    "SetTimer",
    "Suspected",
    "Termination",
    "TerminationKind",
    "TimerMessage",
    "Unconfirmed",
    "Watching",
]

Outbound = MembershipMessage | Envelope
"""What a node writes to another: its protocol's messages, and application envelopes."""


class MembershipChanged(msgspec.Struct, frozen=True):
    """Membership actor -> listener registry: one state change, its events and the new snapshot.
    ``published_at``: when the actor handed it over (its monotonic clock; the step never sets
    it), so the registry can measure its fan-out latency."""

    events: tuple[ClusterEvent, ...]
    state: CurrentClusterState
    published_at: float | None = None


class TerminationKind(enum.Enum):
    """Why a node stopped; the CLI turns it into its exit code."""

    LEFT = "left"  # it left gracefully (or, alone, removed itself)
    STOPPED = "stopped"  # stop() was called
    REMOVED = "removed"  # the cluster downed or removed it, or it downed itself in a minority
    FAILED = "failed"  # one of its actors crashed


class Termination(msgspec.Struct, frozen=True):
    """Membership actor -> node: this member is out of the cluster for good, and why."""

    kind: TerminationKind
    reason: str


class Leave(msgspec.Struct, frozen=True):
    """Ask this node's member to leave the cluster gracefully."""


class LeaveMember(msgspec.Struct, frozen=True):
    """An operator's command: the member at ``address`` leaves gracefully. This member marks it
    LEAVING (itself: as ``Leave``); a member that finds itself LEAVING leaves as if asked. No
    member there, or one leaving already: nothing changes."""

    address: Address


class DownMember(msgspec.Struct, frozen=True):
    """An operator's command: mark the member at ``address`` DOWN; the leader removes it, and a
    live member that learns it was downed stops, as one downed by the cluster. No member there,
    or one DOWN already: nothing changes."""

    address: Address


class GossipTick(msgspec.Struct, frozen=True):
    """Timer message: time for leader actions and to gossip with a peer."""


class HeartbeatTick(msgspec.Struct, frozen=True):
    """Timer message: time to send heartbeats and check the failure detectors."""


class ProbeTick(msgspec.Struct, frozen=True):
    """Timer message: the earliest deadline of a probe under way (asked of relays, or run as
    a relay) has come."""


class JoinCluster(msgspec.Struct, frozen=True):
    """Node -> membership: join through ``seeds`` (or form a cluster, when there are none but
    itself). The membership actor reports ``Joined`` or ``JoinFailed`` to its supervisor.
    ``discovery`` names where more seeds will come from (``SeedsFound``), e.g. a DNS name: with
    one, no seed yet means waiting for some, not forming a cluster."""

    seeds: tuple[Address, ...]
    discovery: str | None = None


class SeedsFound(msgspec.Struct, frozen=True):
    """Node's seed discovery -> membership: the addresses its source (``JoinCluster.discovery``)
    gives now, replacing those it gave before; ignored once the member has joined."""

    seeds: tuple[Address, ...]


class JoinAttempt(msgspec.Struct, frozen=True):
    """Timer message: try the next seed (``attempt`` counts from 0)."""

    attempt: int


class LeaveTimedOut(msgspec.Struct, frozen=True):
    """Timer message: ``leave_timeout`` has passed since ``Leave``; a member still not removed
    gives up waiting and stops."""


class PeerGone(msgspec.Struct, frozen=True):
    """Transport -> membership: the link to the member at ``address`` was ended by the peer
    (closed or reset), or, ``refused``, a dial to ``address`` was refused. A hint, never a
    verdict: a closed link may be a live peer's choice, so it only starts a probe round; a
    refusal says no process listens at ``address`` (a crash), where silence says nothing."""

    address: Address
    refused: bool


OnSent = Callable[[], None] | None
"""Called (in the I/O thread) once an application frame has been written, or dropped."""


class Inbound(msgspec.Struct, frozen=True):
    """A decoded wire message that came in on ``link`` (answer it there with ``Reply``);
    ``peer`` names the remote end for log lines; ``identity`` is who the link's handshake said
    its peer is (None: a dialled link whose peer has not said it yet), which every rule of
    ``messages.membership.authority`` checks the message against."""

    message: msgspec.Struct  # what the link's codec decodes: a WireMessage on a node's links
    link: int
    peer: str = "?"
    identity: Identity | None = None


class SendTo(msgspec.Struct, frozen=True):
    """Transport: write ``message`` to the member at ``address``, over the link to it (dialled if
    there is none). ``on_sent`` (for an application message) is called once it has been written
    to the socket, or dropped."""

    address: Address
    message: Outbound
    on_sent: OnSent = None


class Reply(msgspec.Struct, frozen=True):
    """Transport: write ``message`` on ``link``, the one a request came in on (``on_sent``: as
    for ``SendTo``)."""

    link: int
    message: Outbound
    on_sent: OnSent = None


class Broadcast(msgspec.Struct, frozen=True):
    """Transport: write ``message`` on every link of a connected client."""

    message: Outbound


class Watching(msgspec.Struct, frozen=True):
    """Membership actor -> transport: the client on ``link`` watches: push it every state."""

    link: int


class CloseLink(msgspec.Struct, frozen=True):
    """Transport: close the link to ``address`` (the next send dials a fresh one)."""

    address: Address
    reason: str


class Disconnect(msgspec.Struct, frozen=True):
    """Transport: close ``link`` (its peer sent what its role may not send)."""

    link: int
    reason: str


class MembershipReached(msgspec.Struct, frozen=True):
    """Membership (or client) actor -> ordering actor: this node's view is now ``version``, with
    the ``removed`` members gone."""

    version: VectorClock
    removed: frozenset[str]


TimerMessage = GossipTick | HeartbeatTick | ProbeTick | JoinAttempt | LeaveTimedOut
"""What a timer delivers back to the member that set it."""


class SetTimer(msgspec.Struct, frozen=True):
    """Deliver ``message`` to this member after ``delay`` seconds (a timer of the same message
    type that is still pending is replaced)."""

    delay: float
    message: TimerMessage


class Joined(msgspec.Struct, frozen=True):
    """Supervisor: this member is part of a cluster now; ``formed``: a new cluster of its own
    (it had no other seed, or, as the first seed, heard from none of the others)."""

    formed: bool = False


class JoinFailed(msgspec.Struct, frozen=True):
    """Supervisor: joining failed for good; ``refused`` when the cluster said no (rather than no
    seed answering in time)."""

    reason: str
    refused: bool


class Dropped(msgspec.Struct, frozen=True):
    """News: a wire message from ``peer`` (member ``sender``, when it names one) was dropped.
    ``rule`` is the protocol rule it broke (``messages.membership.validation``; ``"known-type"``
    for a message a member never takes), ``None`` for a valid one the member cannot act on yet;
    ``detail`` says why."""

    message: str  # its type's name
    peer: str
    rule: str | None
    detail: str
    sender: str | None = None


class JoinTried(msgspec.Struct, frozen=True):
    """News: join attempt ``attempt`` (counting from 1) went to ``seed``, ``waited`` seconds
    after the join started; ``tried`` names the seeds (and the discovery) it goes through."""

    attempt: int
    seed: Address
    waited: float = 0.0
    tried: str = ""


class Suspected(msgspec.Struct, frozen=True):
    """News: this member's heartbeats to ``member`` went unanswered, and a relay confirmed the
    silence (or there was no other member to ask); it reports it unreachable."""

    member: Member


class Unconfirmed(msgspec.Struct, frozen=True):
    """News: ``member`` is silent to this member, but none of the relays asked about it
    answered: the fault is likely this member's own, so it accuses nobody; its local health
    score is now ``health``."""

    member: Member
    health: int


class Paused(msgspec.Struct, frozen=True):
    """News: this member did not run for ``gap`` seconds; it discounts that silence."""

    gap: float


class Downing(msgspec.Struct, frozen=True):
    """News: keep-majority downs ``members`` (this member itself, when it is in a minority), with
    ``reachable`` of ``total`` up members reachable."""

    members: tuple[Member, ...]
    reachable: int
    total: int


Input = (
    JoinCluster
    | SeedsFound
    | Inbound
    | GossipTick
    | HeartbeatTick
    | ProbeTick
    | PeerGone
    | JoinAttempt
    | LeaveTimedOut
    | Leave
    | LeaveMember
    | DownMember
)
"""Everything a member's step function takes."""


Effect = (
    SendTo
    | Reply
    | Broadcast
    | CloseLink
    | Disconnect
    | Watching
    | MembershipChanged
    | MembershipReached
    | SetTimer
    | Joined
    | JoinFailed
    | Termination
    | Dropped
    | JoinTried
    | Suspected
    | Unconfirmed
    | Paused
    | Downing
)
"""Everything a member's step function asks its interpreter to do."""
