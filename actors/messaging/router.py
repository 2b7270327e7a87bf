"""RouterActor: actors reachable by name, remote tells and asks, publish and subscribe.

It keeps the names of this node's actors, the topic subscriptions, and the asks in flight and the
up members in ``Asks``, which it shares with the threads that send a blocking ask straight to its
link (``actors.messaging.asks``). Outbound, it picks the member (with its own
``Settings.load_balancing`` strategy over the up members it keeps, when none is named: no ask on
the hot path), encodes the payload and hands the message to the ordering actor; inbound, it gets
each envelope from the ordering actor in order and hands it to the actor registered under its
name. A remote ask is run against the local actor without blocking anyone: the actor's reply
future writes the answer to the link the ask came by itself, in the actor's thread (the lane,
``actors.messaging.lane``; through the ordering actor when the lane refuses it). Every ask ends,
exactly once: with the answer, a ``RemoteError``, or ``RemoteTimeout``; how an outcome is made
and handed over, at either end, is ``actors.messaging.outcomes``.
"""

from __future__ import annotations

import functools
import logging
import random
import sys
from typing import Any, NamedTuple

import msgspec
import pykka

from actors.dispatch.actor import DispatchedActor
from actors.messaging.asks import Asks, find_member
from actors.messaging.flow import FlowGate
from actors.messaging.lane import Lane
from actors.messaging.outbox import DRAIN, DrainOutbox, Outbox
from actors.messaging.outcomes import (
    answer_body,
    ask_without_waiting,
    local_envelope,
    remote_error,
    reply,
)
from actors.transport.backlog import envelope_bytes
from actors.transport.loop import IoLoop
from messages.events import MemberDowned, MemberEvent, MemberRemoved, MemberUp
from messages.local.commands import InitialState, Subscribe
from messages.local.routing import (
    Admitted,
    Deliver,
    Delivered,
    PublishEnvelope,
    PublishMessage,
    Register,
    RemoteAsk,
    RemoteTell,
    SendEnvelope,
    SendEnvelopes,
    SubscribeTopic,
    Unregister,
    UnsubscribeTopic,
)
from messages.member import Member
from messages.membership.changes import age_order
from messages.messaging.balancing import strategy_named
from messages.messaging.envelope import Answer, Ask, Failure, Publish, Tell
from messages.settings import Settings
from messages.wire.remote import (
    MemberGone,
    NoMemberAvailable,
    NoSuchActor,
    RemoteError,
    RemoteTimeout,
    UnknownMessageType,
    decode_payload,
    encode_payload,
    error_from_wire,
)

__all__ = ["RouterActor"]

logger = logging.getLogger(__name__)

# Messages taken from the outbox in one turn: enough to amortise a turn and a run of envelopes,
# few enough that the turn stays short for the other actors of the dispatcher.
_BATCH = 512


class _AskExpired(NamedTuple):
    ask_id: int


class RouterActor(DispatchedActor):
    """Names, asks and topics of one node (or client); see the module docstring."""

    def __init__(
        self,
        *,
        node_id: str,
        ordering: pykka.ActorRef[Any],
        registry: pykka.ActorRef[Any],
        scheduler: IoLoop,
        settings: Settings,
        gate: FlowGate,
        outbox: Outbox,
        lane: Lane,
        asks: Asks,
    ) -> None:
        super().__init__()
        self._lane = lane
        self._gate = gate
        self._outbox = outbox
        self._node_id = node_id
        self._ordering = ordering
        self._strategy = strategy_named(settings.load_balancing, random.Random())
        self._registry = registry
        self._scheduler = scheduler
        self._backlog = scheduler.backlog
        self._backlog.attach()
        self._settings = settings
        self._names: dict[str, pykka.ActorRef[Any]] = {}
        self._topics: dict[str, dict[str, pykka.ActorRef[Any]]] = {}
        self._members: dict[str, Member] = {}
        self._by_age: tuple[Member, ...] = ()  # ``_members`` in age order, as the strategy rotates
        self._asks = asks  # the asks in flight, and the members, shared with asking threads
        self._chosen: tuple[Any, Member] | None = None  # the last member named, and who it is
        self._sending: list[tuple[Member, Any, int]] = []  # (to, body, size) to send in a batch
        self._told: dict[int, Any] = {}  # the inboxes of actors told in this batch, by id

    def on_start(self) -> None:
        subscribe = Subscribe(
            self.actor_ref,
            events=(MemberUp, MemberDowned, MemberRemoved),
            initial_state=InitialState.EVENTS,
        )
        self._registry.tell(subscribe)  # never a blocking ask: it may share our thread

    def on_stop(self) -> None:
        tells = 0
        for admitted in self._outbox.close():
            self._gate.release(len(admitted.payload))
            if isinstance(admitted.message, RemoteAsk):
                reply(admitted.message, error=MemberGone("this node stopped before it was sent"))
            else:
                tells += 1
        if tells:  # a tell has nobody to fail: say so, as dropped frames are
            logger.warning("Dropped %d tell(s): this node stopped before they were sent", tells)
        for ask_id in self._asks.close():
            self._finish(ask_id, error=MemberGone("this node stopped before the answer came"))

    def on_receive(self, message: Any) -> Any:
        match message:
            case Deliver():
                self._on_deliver(message)
                self._check_inboxes()
            case Delivered(deliveries=deliveries):
                for deliver in deliveries:
                    self._on_deliver(deliver)
                self._check_inboxes()
            case DrainOutbox():
                self._drain(_BATCH)
            case Admitted():  # from the outbox, which it woke (as DRAIN would)
                self._admitted(message)
                self._drain(_BATCH)
            case RemoteTell() | RemoteAsk():
                self._admit(message)
                self._flush()
            case _AskExpired(ask_id=ask_id):
                pending = self._asks.get(ask_id)
                timeout = None if pending is None else pending.ask.timeout
                seconds = timeout or self._settings.ask_timeout
                self._finish(ask_id, error=RemoteTimeout(f"no answer within {seconds:g} s"))
            case MemberUp(member=member):
                self._members[member.uuid] = member
                self._by_age = age_order(self._members.values())
                self._asks.members = dict(self._members)
                self._chosen = None
            case MemberDowned(member=member) | MemberRemoved(member=member):
                self._member_gone(
                    member,
                    "was downed" if isinstance(message, MemberDowned) else "left or was removed",
                )
            case Register(name=name, actor=actor):
                self._names[name] = actor
            case Unregister(name=name):
                return self._names.pop(name, None) is not None
            case PublishMessage(topic=topic, message=payload):
                self._drain(sys.maxsize)  # the publisher's earlier tells and asks go first
                return self._publish(topic, payload)
            case SubscribeTopic(topic=topic, actor=actor):
                self._topics.setdefault(topic, {})[actor.actor_urn] = actor
            case UnsubscribeTopic(topic=topic, actor=actor):
                return self._topics.get(topic, {}).pop(actor.actor_urn, None) is not None
            case MemberEvent():
                pass
            case _:
                logger.warning("RouterActor ignores unexpected message %r", message)
        return None

    # -- outbound ------------------------------------------------------------------------------

    def _resolve(self, member: Any) -> Member:
        """The up member a message goes to; ``NoMemberAvailable`` when there is none. The last
        member named is remembered (until the members change): a ``RemoteRef`` names the same
        one with every message."""
        if member is None:
            chosen = self._strategy.next(self._by_age)
            if chosen is None:
                raise NoMemberAvailable("no up member to send to")
            return chosen
        if self._chosen is not None and self._chosen[0] is member:
            return self._chosen[1]
        found = self._find(member)
        self._chosen = (member, found)
        return found

    def _find(self, member: Any) -> Member:
        found = find_member(self._members, member)
        if found is None:
            raise NoMemberAvailable(f"no up member {member}")
        return found

    def _drain(self, limit: int) -> None:
        for admitted in self._outbox.take(limit, self._drain_again):
            self._admitted(admitted)
        self._flush()

    def _drain_again(self) -> None:
        self.actor_ref.tell(DRAIN)

    def _admitted(self, admitted: Admitted) -> None:
        message = admitted.message
        if isinstance(message, RemoteAsk):
            self._ask(message, admitted.kind, admitted.payload)
        else:
            self._tell(message, admitted.kind, admitted.payload)

    def _admit(self, message: RemoteTell | RemoteAsk) -> None:
        """An application actor's tell or ask: encode it and take its place in the flow gate
        without waiting (an actor's thread must not block on the network)."""
        try:
            kind, payload = encode_payload(message.message)
            self._gate.acquire(len(payload), block=False)
        except (TypeError, RemoteError) as error:
            if isinstance(message, RemoteAsk):
                reply(message, error=remote_error(error))
            else:
                logger.warning("Cannot tell %r to %r: %s", message.message, message.name, error)
            return
        if isinstance(message, RemoteAsk):
            self._ask(message, kind, payload)
        else:
            self._tell(message, kind, payload)

    def _tell(self, tell: RemoteTell, kind: str, payload: bytes) -> None:
        try:
            target = self._resolve(tell.member)
        except RemoteError as error:
            self._gate.release(len(payload))
            logger.warning("Cannot tell %r to %r: %s", tell.message, tell.name, error)
            return
        self._send(target, Tell(tell.name, kind, msgspec.Raw(payload)), len(payload))

    def _ask(self, ask: RemoteAsk, kind: str, payload: bytes) -> None:
        try:
            target = self._resolve(ask.member)
        except RemoteError as error:
            self._gate.release(len(payload))
            reply(ask, error=error)
            return
        ask_id = self._asks.add(ask, target.uuid)
        if ask_id is None:  # stopping: on_stop ends what is left
            self._gate.release(len(payload))
            reply(ask, error=MemberGone("this node stopped before it was sent"))
            return
        timeout = ask.timeout or self._settings.ask_timeout
        self._asks.set_timer(
            ask_id, self._scheduler.call_later(timeout, self.actor_ref, _AskExpired(ask_id))
        )
        self._send(target, Ask(ask.name, kind, msgspec.Raw(payload), ask_id), len(payload))

    def _send(self, target: Member, body: Any, size: int) -> None:
        """Send a tell or an ask that has its place in the gate, given back once it is written
        (queued for ``_flush``, which ends each message's handling)."""
        if target.uuid == self._node_id:  # to an actor of this very node: no wire
            self._gate.release(size)
            self.actor_ref.tell(Deliver(local_envelope(self._node_id, body), None, "this member"))
        else:
            self._sending.append((target, body, size))

    def _flush(self) -> None:
        """Hand what ``_send`` queued to the ordering actor: the bodies to each member, in their
        order, as one ``SendEnvelopes``, whose places in the gate come back at once when it is
        written."""
        if not self._sending:
            return
        runs: dict[str, tuple[Member, list[Any], list[int]]] = {}
        for target, body, size in self._sending:
            run = runs.get(target.uuid)
            if run is None:
                run = runs[target.uuid] = (target, [], [])
            run[1].append(body)
            run[2].append(size)
        self._sending = []
        for uuid, (target, bodies, sizes) in runs.items():
            release = functools.partial(self._gate.release, sum(sizes), len(sizes))
            if len(bodies) == 1:  # a lone ask or tell: the plain path
                send: Any = SendEnvelope(uuid, bodies[0], address=target.address, on_sent=release)
            else:
                send = SendEnvelopes(uuid, bodies, address=target.address, on_sent=release)
            self._ordering.tell(send)

    def _publish(self, topic: str, message: Any) -> RemoteError | None:
        """Publish, with a place in the flow gate for each member it goes to (all or none, at
        once: this thread never waits); the error when there is no room, for the publisher."""
        destinations = tuple(
            (m.uuid, m.address) for m in self._members.values() if m.uuid != self._node_id
        )
        try:
            kind, payload = encode_payload(message)
            if destinations:
                self._gate.acquire(len(payload), block=False, count=len(destinations))
        except (TypeError, RemoteError) as error:
            logger.warning("Cannot publish %r on %r: %s", message, topic, error)
            return error if isinstance(error, RemoteError) else None
        release = functools.partial(self._gate.release, len(payload))
        self._ordering.tell(PublishEnvelope(destinations, topic, kind, payload, release))
        return None

    # -- inbound -------------------------------------------------------------------------------

    def _on_deliver(self, deliver: Deliver) -> None:
        envelope = deliver.envelope
        if deliver.link is not None:  # read off a link: it leaves the node's backlog here
            self._backlog.taken(envelope_bytes(envelope))
        match envelope.body:
            case Tell(to=to, kind=kind, payload=payload):
                self._on_tell(to, kind, payload, deliver.peer)
            case Ask():
                self._on_ask(envelope.sender, deliver.link, envelope.body)
            case Answer(ask_id=ask_id, kind=kind, payload=payload):
                try:
                    value = decode_payload(kind, payload)
                except RemoteError as error:
                    self._finish(
                        ask_id, error=UnknownMessageType(f"the answer cannot be read here: {error}")
                    )
                else:
                    self._finish(ask_id, value=value)
            case Failure(ask_id=ask_id, error=error, message=text):
                self._finish(ask_id, error=error_from_wire(error, text))
            case Publish(topic=topic, kind=kind, payload=payload):
                self._on_publish(topic, kind, payload, deliver.peer)

    def _on_tell(self, to: str, kind: str, payload: msgspec.Raw, peer: str) -> None:
        actor = self._names.get(to)
        try:
            if actor is None:
                raise NoSuchActor(f"no actor is registered as {to!r} here")
            actor.tell(decode_payload(kind, payload))
            self._told[id(actor.actor_inbox)] = actor.actor_inbox
        except (RemoteError, pykka.ActorDeadError) as error:
            logger.warning("Dropped a message for %r from %s: %s", to, peer, error)

    def _check_inboxes(self) -> None:
        """Let the backlog look at the inboxes of the actors told something (once a batch)."""
        for inbox in self._told.values():
            self._backlog.handed(inbox)
        self._told.clear()

    def _on_ask(self, sender: str, link: int | None, ask: Ask) -> None:
        actor = self._names.get(ask.to)
        try:
            if actor is None or not actor.is_alive():
                raise NoSuchActor(f"no actor is registered as {ask.to!r} on member {self._node_id}")
            value = decode_payload(ask.kind, ask.payload)
        except RemoteError as error:
            self._answer(sender, link, answer_body(ask.ask_id, error=error))
            return
        send = self._answer

        def answer(result: Any, error: BaseException | None) -> None:
            """In the actor's thread: the outcome goes straight back, not through this router."""
            try:
                send(sender, link, answer_body(ask.ask_id, result, error))
            except pykka.ActorDeadError:
                logger.debug("The node stopped before an answer to %s went out", sender)

        ask_without_waiting(actor, value, answer)
        self._backlog.handed(actor.actor_inbox)

    def _answer(self, sender: str, link: int | None, body: Answer | Failure) -> None:
        """Send an ask's outcome to its sender (thread-safe: it writes through the lane, or
        tells actors). An answer takes a place in the flow gate, without waiting (this may be
        the answering actor's thread); without room, or too large, the asker gets that error
        instead. A failure, a few bytes for each ask received, goes ungated."""
        if sender == self._node_id:
            self.actor_ref.tell(Deliver(local_envelope(sender, body), None, "this member"))
            return
        on_sent = None
        if isinstance(body, Answer):
            size = len(body.payload)
            try:
                self._gate.acquire(size, block=False)
            except RemoteError as error:
                body = answer_body(body.ask_id, error=error)
            else:
                on_sent = functools.partial(self._gate.release, size)
        if not self._lane.send(sender, body, on_sent, link=link):  # straight to its link
            self._ordering.tell(SendEnvelope(sender, body, link=link, on_sent=on_sent))

    def _on_publish(self, topic: str, kind: str, payload: msgspec.Raw, peer: str) -> None:
        subscribers = self._topics.get(topic)
        if not subscribers:
            return
        try:
            value = decode_payload(kind, payload)
        except RemoteError as error:
            logger.warning("Dropped a publish on %r from %s: %s", topic, peer, error)
            return
        for urn, actor in list(subscribers.items()):
            try:
                actor.tell(value)
            except pykka.ActorDeadError:
                del subscribers[urn]
            else:
                self._backlog.handed(actor.actor_inbox)

    # -- asks in flight ------------------------------------------------------------------------

    def _member_gone(self, member: Member, how: str) -> None:
        self._members.pop(member.uuid, None)
        self._by_age = age_order(self._members.values())
        self._asks.members = dict(self._members)  # first: an asker that adds after looks again
        self._chosen = None
        for ask_id in self._asks.numbers(member.uuid):
            self._finish(
                ask_id, error=MemberGone(f"member {member.address} {how} before it answered")
            )

    def _finish(self, ask_id: int, *, value: Any = None, error: RemoteError | None = None) -> None:
        pending = self._asks.pop(ask_id)
        if pending is None:
            logger.debug("An answer to ask %d came after it had ended", ask_id)
            return
        if pending.timer is not None:
            pending.timer.cancel()
        reply(pending.ask, value=value, error=error)
