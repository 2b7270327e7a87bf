"""Commands of cluster messaging between a node's actors and application actors (local only).

Application actors use the first group (``Register``, ``RemoteTell``, ``RemoteAsk``,
``PublishMessage``, ``SubscribeTopic``...) with a node's ``router``; asks answer them with
``RemoteReply`` or ``RemoteFailure``. The rest pass between the router, the ordering actor, the
membership (or client) actor and the transport.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pykka

from messages.address import Address
from messages.member import Member
from messages.membership.effects import OnSent
from messages.messaging.envelope import Envelope, EnvelopeBody, Envelopes
from messages.wire.remote import RemoteError

__all__ = [
    "Admitted",
    "Deliver",
    "Delivered",
    "ExpireHeld",
    "GetOrderingStats",
    "MemberChoice",
    "OrderingStats",
    "PublishEnvelope",
    "PublishMessage",
    "Register",
    "RemoteAsk",
    "RemoteFailure",
    "RemoteReply",
    "RemoteTell",
    "SendEnvelope",
    "SendEnvelopes",
    "SendRun",
    "SubscribeTopic",
    "Unregister",
    "UnsubscribeTopic",
]


MemberChoice = Member | str | Address | None
"""Which member: a ``Member``, its uuid, its ``Address`` or ``"host:port"``; None lets the load
balancer choose, for each message."""


def _check_name(name: object, what: str = "name") -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} must be a non-empty str, not {name!r}")


def _check_actor(actor: object) -> None:
    if not isinstance(actor, pykka.ActorRef):
        raise TypeError(f"actor must be a pykka ActorRef, not {type(actor).__name__}")


def _check_member(member: object) -> None:
    if member is not None and not isinstance(member, Member | Address | str):
        raise TypeError(
            f"member must be a Member, a uuid, an Address, a 'host:port' or None, not {member!r}"
        )


class Register(msgspec.Struct, frozen=True):
    """Make ``actor`` reachable from other members as ``name`` (replacing any actor there)."""

    name: str
    actor: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_actor(self.actor)


class Unregister(msgspec.Struct, frozen=True):
    """Forget ``name``. Replies True if an actor was registered under it."""

    name: str


class RemoteTell(msgspec.Struct, frozen=True):
    """Send ``message`` to the actor registered as ``name`` on ``member`` (a ``Member``, a uuid,
    an ``Address`` or ``"host:port"``; None: the next one from the load balancer)."""

    name: str
    message: Any
    member: MemberChoice = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_member(self.member)


class RemoteAsk(msgspec.Struct, frozen=True):
    """Ask the actor registered as ``name`` on ``member``. The answer goes to ``reply_to``: a
    pykka ActorRef gets ``RemoteReply(correlation, value)`` or ``RemoteFailure(correlation,
    error)``; a pykka Future is set to the value or to the error. ``timeout`` None: the node's
    ``ask_timeout``."""

    name: str
    message: Any
    reply_to: pykka.ActorRef[Any] | pykka.Future[Any]
    member: MemberChoice = None
    correlation: Any = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_member(self.member)
        if not isinstance(self.reply_to, pykka.ActorRef | pykka.Future):
            raise TypeError(
                f"reply_to must be a pykka ActorRef or Future, not {type(self.reply_to).__name__}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be positive, not {self.timeout!r}")


class RemoteReply(msgspec.Struct, frozen=True):
    """The answer to an actor's ``RemoteAsk`` with that ``correlation``."""

    correlation: Any
    value: Any


class RemoteFailure(msgspec.Struct, frozen=True):
    """An actor's ``RemoteAsk`` with that ``correlation`` failed; ``error`` says why."""

    correlation: Any
    error: RemoteError


class PublishMessage(msgspec.Struct, frozen=True):
    """Deliver ``message`` to the subscribers of ``topic`` on every member, in causal order."""

    topic: str
    message: Any

    def __post_init__(self) -> None:
        _check_name(self.topic, "topic")


class SubscribeTopic(msgspec.Struct, frozen=True):
    """Tell ``actor`` every message published on ``topic`` from now on."""

    topic: str
    actor: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_name(self.topic, "topic")
        _check_actor(self.actor)


class UnsubscribeTopic(msgspec.Struct, frozen=True):
    """Stop telling ``actor`` the messages of ``topic``. Replies True if it was subscribed."""

    topic: str
    actor: pykka.ActorRef[Any]

    def __post_init__(self) -> None:
        _check_actor(self.actor)


class Deliver(msgspec.Struct, frozen=True):
    """Ordering actor -> router: an envelope whose time has come. ``link`` is the link it came
    in on (None for this node's own); ``late`` says what it did not wait for, if anything."""

    envelope: Envelope
    link: int | None
    peer: str
    late: str | None = None


class Delivered(msgspec.Struct, frozen=True):
    """Ordering actor -> router: several ``Deliver`` at once, in their order (what one run of
    envelopes, or one membership version reached, released)."""

    deliveries: list[Deliver]


class SendEnvelope(msgspec.Struct, frozen=True):
    """Router -> ordering actor: stamp ``body`` for member (or client) ``to`` and send it to
    ``address``, or on ``link`` when the receiver has no address (a client); ``on_sent`` is
    called once it is written or dropped."""

    to: str
    body: EnvelopeBody
    address: Address | None = None
    link: int | None = None
    on_sent: OnSent = None


class SendEnvelopes(msgspec.Struct, frozen=True):
    """Router -> ordering actor: ``SendEnvelope`` for several bodies to one receiver at once, in
    their order; ``on_sent`` is called once, when all of them are written or dropped."""

    to: str
    bodies: list[EnvelopeBody]
    address: Address | None = None
    link: int | None = None
    on_sent: OnSent = None


class SendRun(msgspec.Struct, frozen=True):
    """Ordering actor -> transport: write ``frames`` (envelopes, alone or in runs, stamped in
    order) to the member at ``address`` in one write; ``on_sent`` is called once, when all are
    written or dropped."""

    address: Address
    frames: list[Envelope | Envelopes]
    on_sent: OnSent = None


class Admitted(msgspec.Struct, frozen=True):
    """Facade -> router: a ``RemoteTell`` or ``RemoteAsk`` whose message the caller's thread has
    encoded (``kind``, ``payload``) and found a place for in the node's flow gate."""

    message: RemoteTell | RemoteAsk
    kind: str
    payload: bytes


class PublishEnvelope(msgspec.Struct, frozen=True):
    """Router -> ordering actor: publish to every member of ``destinations`` (uuid, address),
    and to this node's own subscribers; ``on_sent`` is called once per destination, when its
    frame is written or dropped (it gives back the publish's places in the flow gate)."""

    destinations: tuple[tuple[str, Address], ...]
    topic: str
    kind: str
    payload: bytes
    on_sent: OnSent = None


class ExpireHeld(msgspec.Struct, frozen=True):
    """Timer: the ordering actor releases what has waited ``causal_wait``."""


class GetOrderingStats(msgspec.Struct, frozen=True):
    """Ask the ordering actor how many messages it passed on: a ``OrderingStats``."""


class OrderingStats(msgspec.Struct, frozen=True):
    membership_messages: int
    envelopes_delivered: int
    envelopes_late: int
    held: int
