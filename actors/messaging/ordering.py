"""OrderingActor: every inbound wire message passes here; every application envelope leaves here.

It keeps the node's two kinds of clock apart. The membership version (a ``VectorClock`` the
membership actor reports after each state it adopts) is what envelopes depend on: an envelope
names the version its sender had seen by its digest (with the clock itself when the receiver may
not know it yet) and waits here until this node has reached it. The causal
clock of publishes counts publishes per member and orders them across members. Merging one into the
other would be unsound: membership versions lose the entries of removed members and are merged as
a CRDT (a causal count folded in would make states look newer than they are), and a membership
entry folded into a causal clock would make publishes wait for deliveries that never come.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from actors.dispatch.actor import DispatchedActor, DispatchedInbox, tell_now
from actors.messaging.lane import Lane
from actors.messaging.outcomes import local_envelope
from actors.transport.backlog import envelope_bytes
from actors.transport.loop import IoLoop, notify_sent
from actors.transport.timers import Timer
from messages.local.links import ClientGone
from messages.local.routing import (
    Deliver,
    Delivered,
    ExpireHeld,
    GetOrderingStats,
    OrderingStats,
    PublishEnvelope,
    SendEnvelope,
    SendEnvelopes,
    SendRun,
)
from messages.membership.effects import Inbound, MembershipReached, SendTo
from messages.messaging.causal import CausalBuffer, HoldBackOverflow, Stamped
from messages.messaging.delivery import DeliveryQueue, Release
from messages.messaging.envelope import MAX_RUN, Envelope, Envelopes, Publish, size_bound
from messages.settings import Settings
from messages.wire.handshake import Identity, Role

__all__ = [
    "OrderingActor",
    "StartPeers",
]

logger = logging.getLogger(__name__)

_Arrival = tuple[Envelope, int | None, str]  # an envelope, the link it came on, its peer
# The bytes of a run of envelopes: a fraction of what one read takes off a link (256 KiB), so that
# a run hands a receiver no more at once than a read of single envelopes did (its backlog's bound)
# and its handling stays one short turn of the receiver's dispatcher.
_RUN_BYTES = 64 * 1024

StartPeers = Callable[[pykka.ActorRef[Any]], tuple[pykka.ActorRef[Any], pykka.ActorRef[Any]]]
"""Starts, given the ordering actor's ref, the two actors it hands inbound messages to and that
talk back to it: the membership (or client) actor and the router; returns their refs."""


class _ControlFirst(DispatchedInbox):
    """The ordering actor's inbox: membership traffic and commands before application envelopes,
    each kind in its own order (``DispatchedInbox``'s queue discipline hooks), so that a burst of
    messages never delays a heartbeat or a gossip behind it."""

    def __init__(self) -> None:
        super().__init__()
        self._control: collections.deque[Any] = collections.deque()
        self._data: collections.deque[Any] = collections.deque()

    def __len__(self) -> int:
        return len(self._control) + len(self._data)

    def _store(self, envelope: Any) -> None:
        message = getattr(envelope, "message", None)
        if isinstance(message, ClientGone) or (
            isinstance(message, Inbound) and isinstance(message.message, Envelope | Envelopes)
        ):  # a client's end comes after the envelopes it sent
            self._data.append(envelope)
        else:
            self._control.append(envelope)

    def _take(self) -> Any:
        return self._control.popleft() if self._control else self._data.popleft()


class OrderingActor(DispatchedActor):
    """Inbound: membership messages (gossip, heartbeats, joins, client updates) go straight on to
    the membership (or client) actor: gossip is a state-based merge and needs no hold-back.
    Envelopes wait in a ``DeliveryQueue`` (FIFO per sender, the sender's membership reached, at
    most ``causal_wait``), publishes then in a ``CausalBuffer`` (in causal order across members),
    and go to the router as ``Deliver``. Outbound: ``SendEnvelope`` and ``PublishEnvelope`` are
    stamped with the next sequence for their receiver and the digest of this node's membership
    version (its clock too, when ``Definitions`` says the receiver needs it) and go to the
    transport.

    It is built with every ref it needs: ``transport``, and the membership actor and the router,
    which need its ref in turn and so are started by ``start_peers`` with it (pykka sets
    ``actor_ref`` before ``__init__`` runs; what they tell it waits in its inbox until it runs).
    A member forgets a client once its last link has closed (``ClientGone``); a ``client``'s
    ordering actor takes a member's numbering from 1 again as a new stream.
    """

    @staticmethod
    def _create_actor_inbox() -> DispatchedInbox:
        return _ControlFirst()

    def __init__(
        self,
        node_id: str,
        settings: Settings,
        scheduler: IoLoop,
        *,
        transport: pykka.ActorRef[Any],
        start_peers: StartPeers,
        client: bool = False,
        lane: Lane | None = None,
    ) -> None:
        super().__init__()
        self._node_id = node_id
        self._settings = settings
        self._scheduler = scheduler
        self._transport = transport
        self._renumbered = client  # members forget a client gone a while, and number anew
        self._membership, self._router = start_peers(self.actor_ref)
        self._queue: DeliveryQueue[_Arrival] = DeliveryQueue(
            settings.causal_wait, settings.max_held_messages
        )
        self._publishes = CausalBuffer(settings.max_held_messages, join_late=True)
        # Every envelope's stamp, shared with the threads that write theirs straight to a link.
        self._lane = Lane(scheduler, settings, {}) if lane is None else lane
        self._expiry: Timer | None = None
        self._handing: list[Deliver] = []  # for the router, told at the end of each message
        self._membership_messages = 0
        self._delivered = 0
        self._late = 0

    def on_stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()

    def on_receive(self, message: Any) -> Any:
        match message:
            case Inbound(message=Envelope() as envelope, link=link, peer=peer, identity=identity):
                self._deliver(self._accept(envelope, link, peer, identity))
            case Inbound(message=Envelopes(envelopes=run), link=link, peer=peer, identity=identity):
                released = []
                for envelope in run:
                    released += self._accept(envelope, link, peer, identity)
                self._deliver(released)
            case Inbound():
                self._membership_messages += 1
                self._hand_to(self._membership, message)
            case SendEnvelope(to=to, body=body, address=address, link=link, on_sent=on_sent):
                self._send(to, body, address, link, on_sent)
            case SendEnvelopes(to=to, bodies=bodies, address=address, link=link, on_sent=on_sent):
                self._send_run(to, bodies, address, link, on_sent)
            case PublishEnvelope():
                self._publish(message)
            case MembershipReached(version=version, removed=removed):
                released = self._queue.reached(version, removed, time.monotonic())
                self._lane.reached(version, self._queue.digest)
                self._deliver(released)
            case ExpireHeld():
                self._expiry = None
                now = time.monotonic()
                self._deliver(self._queue.expire(now))
                self._give_up_on_publishes(now - self._settings.causal_wait)
            case ClientGone(uuid=uuid):
                self._lane.forget(uuid)
                self._deliver(self._queue.forget(uuid))
            case GetOrderingStats():
                return OrderingStats(
                    self._membership_messages, self._delivered, self._late, self._queue.held
                )
            case _:
                logger.warning("OrderingActor ignores unexpected message %r", message)
        if self._handing:
            self._hand_over()
        return None

    # -- inbound -------------------------------------------------------------------------------

    def _accept(
        self, envelope: Envelope, link: int, peer: str, identity: Identity | None
    ) -> list[Release[_Arrival]]:
        """Take one envelope off a link into the hold-back; what it releases. Nobody writes into
        another sender's ordered stream: one that names another sender than its link's
        handshake did is dropped."""
        sender = envelope.sender
        if identity is None or sender not in ("", identity.uuid):
            self._scheduler.backlog.dropped(envelope_bytes(envelope))
            logger.warning(
                "Dropped an envelope from %s: it names %s as its sender, but its link's "
                "handshake named %s",
                peer,
                sender,
                None if identity is None else identity.uuid,
            )
            return []
        if not sender:  # left out on the wire: it is the link's (see Envelope)
            envelope = msgspec.structs.replace(envelope, sender=identity.uuid)
        duplicates = self._queue.duplicates
        try:
            released = self._queue.offer(
                envelope.sender,
                envelope.sequence,
                envelope.version,
                (envelope, link, peer),
                time.monotonic(),
                envelope.version_clock,
                start_anywhere=identity.role is Role.CLIENT,
                renumbers=self._renumbered,
            )
        except ValueError as error:
            logger.warning("Dropped an envelope from %s (%s): %s", peer, envelope.sender, error)
            self._scheduler.backlog.dropped(envelope_bytes(envelope))
            return []
        if self._queue.duplicates != duplicates:
            self._scheduler.backlog.dropped(envelope_bytes(envelope))
        return released

    def _deliver(self, released: list[Release[_Arrival]]) -> None:
        for (envelope, link, peer), late in released:
            if late is not None:
                self._late += 1
                logger.warning(
                    "Delivering %s from %s late: %s", type(envelope.body).__name__, peer, late
                )
            if isinstance(envelope.body, Publish):
                self._order_publish(envelope, link, peer, late)
            else:
                self._hand_on(Deliver(envelope, link, peer, late))
        self._schedule_expiry()

    def _order_publish(
        self, envelope: Envelope, link: int | None, peer: str, late: str | None
    ) -> None:
        body = envelope.body
        assert isinstance(body, Publish)
        deliver = Deliver(envelope, link, peer, late)
        stamped = Stamped(envelope.sender, body.clock, (deliver, time.monotonic()))
        duplicates = self._publishes.duplicates
        try:
            for ready in self._publishes.offer(stamped):
                self._hand_on(ready.body[0])
            if self._publishes.duplicates != duplicates:
                self._scheduler.backlog.dropped(envelope_bytes(envelope))
        except (HoldBackOverflow, ValueError) as error:
            logger.warning("Delivering a publish from %s out of causal order: %s", peer, error)
            self._hand_on(deliver)

    def _give_up_on_publishes(self, overdue: float) -> None:
        for ready in self._publishes.give_up(lambda item: bool(item.body[1] <= overdue)):
            deliver, _ = ready.body
            self._late += 1
            logger.warning(
                "Delivering a publish from %s late: its causes never came within %g s",
                deliver.peer,
                self._settings.causal_wait,
            )
            self._hand_on(deliver)
        self._schedule_expiry()

    def _hand_on(self, deliver: Deliver) -> None:
        """Queue ``deliver`` for the router: what one message released goes in one hop."""
        self._delivered += 1
        self._handing.append(deliver)

    def _hand_over(self) -> None:
        """At the end of a message: the router takes what it released. A lone envelope (an
        ask, its answer) is handled now when the router is idle on this thread (``tell_now``:
        no second turn; this actor's state is whole); a batch waits for the router's turn, so
        that a stream's turns stay as long as they were."""
        handing, self._handing = self._handing, []
        if len(handing) == 1:
            self._hand_to(self._router, handing[0], tell_now)
        else:
            self._hand_to(self._router, Delivered(handing))

    @staticmethod
    def _hand_to(
        actor: pykka.ActorRef[Any],
        message: Inbound | Deliver | Delivered,
        tell: Callable[[pykka.ActorRef[Any], Any], None] = pykka.ActorRef.tell,
    ) -> None:
        # The membership actor and the router tell this actor things too, so a stopping node
        # stops them first, then this one: what it still hands them meanwhile has no taker.
        try:
            tell(actor, message)
        except pykka.ActorDeadError:  # (a ``try``: ``contextlib.suppress`` costs three calls)
            logger.debug("Dropped %s: its actor has stopped", type(message).__name__)

    def _schedule_expiry(self) -> None:
        if self._expiry is not None or not (self._queue.held or self._publishes.held):
            return  # due already, or nothing held (the common case: no look at every sender)
        deadlines = [self._queue.next_deadline()]
        deadlines += [
            item.body[1] + self._settings.causal_wait for item in self._publishes.held_items()
        ]
        deadline = min((d for d in deadlines if d is not None), default=None)
        if deadline is not None:
            delay = max(deadline - time.monotonic(), 0.0)
            self._expiry = self._scheduler.call_later(delay, self.actor_ref, ExpireHeld())

    # -- outbound ------------------------------------------------------------------------------

    def _send(
        self, to: str, body: Any, address: Any, link: int | None, on_sent: Any = None
    ) -> None:
        """Stamp and send: to a member by the transport, which owns the links to members (so
        envelopes to one receiver keep their order, whichever link carries them, and none is
        written to a link it has replaced); an answer to a client straight on its link."""
        (envelope,), on_sent = self._lane.stamp(to, [body], on_sent)
        if address is not None:
            self._transport.tell(SendTo(address, envelope, on_sent))
        elif link is not None:
            self._scheduler.send(link, envelope, data=True, on_sent=on_sent)
        else:
            notify_sent(on_sent)

    def _send_run(
        self, to: str, bodies: list[Any], address: Any, link: int | None, on_sent: Any
    ) -> None:
        """``_send`` for several bodies to one receiver, written at once: the first envelope
        carries the version's clock when the lane says so, the rest name it alone."""
        envelopes, on_sent = self._lane.stamp(to, bodies, on_sent)
        frames = self._frames(envelopes)
        if address is not None:
            self._transport.tell(SendRun(address, frames, on_sent))
        elif link is not None:
            self._scheduler.send_many(link, frames, on_sent=on_sent)
        else:
            notify_sent(on_sent)

    def _frames(self, envelopes: list[Envelope]) -> list[Envelope | Envelopes]:
        """``envelopes`` in runs of up to ``MAX_RUN``, each within ``_RUN_BYTES`` and half a
        frame (an envelope alone goes as itself)."""
        limit = min(self._settings.max_frame_bytes // 2, _RUN_BYTES)
        frames: list[Envelope | Envelopes] = []
        run: list[Envelope] = []
        size = 0
        for envelope in envelopes:
            cost = size_bound(envelope)
            if run and (len(run) == MAX_RUN or size + cost > limit):
                frames.append(run[0] if len(run) == 1 else Envelopes(run))
                run, size = [], 0
            run.append(envelope)
            size += cost
        frames.append(run[0] if len(run) == 1 else Envelopes(run))
        return frames

    def _publish(self, publish: PublishEnvelope) -> None:
        """One publish: the next entry of this node's publish clock, to every member; this node's
        own subscribers get it at once (a node's own publish is delivered when it is sent)."""
        own = self._publishes.stamp(self._node_id, None)
        body = Publish(publish.topic, publish.kind, msgspec.Raw(publish.payload), own.clock)
        self._hand_on(Deliver(local_envelope(self._node_id, body), None, "this member"))
        for member, address in publish.destinations:
            self._send(member, body, address, None, publish.on_sent)
