"""Cluster messaging from any thread: ``RemoteRef`` and the ``Messaging`` methods of a node.

Each call validates and encodes the message in the caller's thread (so an unregistered type is a
``TypeError`` right there), takes its place in the flow gate and hands it to the node's router
through the ``Outbox`` (which the router takes in batches); an ask returns a pykka future, or blocks
on it. A blocking ask of a named member is written to its link from the caller's thread when
nothing else of the node waits to be sent (``actors.messaging.asks``).
"""

from __future__ import annotations

import time
from typing import Any, Literal, overload

import pykka

from actors.messaging.asks import Asks
from actors.messaging.flow import FlowGate
from actors.messaging.futures import ask as ask_actor
from actors.messaging.lane import Lane
from actors.messaging.outbox import DRAIN, Outbox
from actors.messaging.router import RouterActor
from actors.transport.loop import IoLoop
from messages.local.routing import (
    Admitted,
    MemberChoice,
    PublishMessage,
    Register,
    RemoteAsk,
    RemoteTell,
    SubscribeTopic,
    Unregister,
    UnsubscribeTopic,
)
from messages.settings import Settings
from messages.wire.remote import Backpressure, RemoteTimeout, encode_payload

__all__ = [
    "MemberChoice",
    "Messaging",
    "RemoteRef",
]


class RemoteRef:
    """The actor registered as ``name`` on ``member`` (or on the member the load balancer picks
    for each message), with pykka's ``tell`` and ``ask``."""

    def __init__(
        self,
        router: pykka.ActorRef[Any],
        gate: FlowGate,
        name: str,
        member: MemberChoice,
        settings: Settings,
        outbox: Outbox,
        asks: Asks,
    ) -> None:
        self._router = router
        self._asks = asks
        self._gate = gate
        self._outbox = outbox
        self.name = name
        self.member = member
        self._settings = settings

    def __repr__(self) -> str:
        where = "the load balancer's choice" if self.member is None else str(self.member)
        return f"RemoteRef({self.name!r} on {where})"

    def tell(self, message: Any) -> None:
        """Send ``message`` (a registered Struct or a plain value); it arrives in order after the
        ones this node sent before to that member. Raises ``TypeError`` for a type that cannot
        travel; ``Backpressure`` when the node's flow gate stays full (``max_messages_in_flight``
        or ``max_bytes_in_flight`` still waiting to be sent) for ``ask_timeout``, or at once
        without ``block_on_backpressure``; ``RuntimeError`` when the node has stopped."""
        self._send(RemoteTell(self.name, message, self.member), *encode_payload(message))

    @overload
    def ask(
        self, message: Any, *, timeout: float | None = None, block: Literal[True] = True
    ) -> Any: ...

    @overload
    def ask(
        self, message: Any, *, timeout: float | None = None, block: Literal[False]
    ) -> pykka.Future[Any]: ...

    def ask(self, message: Any, *, timeout: float | None = None, block: bool = True) -> Any:
        """The remote actor's answer (its ``on_receive`` return value). With ``block=False``, a
        pykka future of it. Fails with ``RemoteTimeout`` after ``timeout`` (default: the node's
        ``ask_timeout``) or another ``RemoteError`` as soon as the outcome is known.

        A blocking ask of a named member goes straight from this thread to the member's link
        when it can (``actors.messaging.asks``), else by the router, as every other message."""
        kind, payload = encode_payload(message)
        seconds = timeout or self._settings.ask_timeout
        if block and self.member is not None:
            sent = self._asks.ask(self.name, message, self.member, kind, payload)
            if sent is not None:
                return self._wait(*sent, seconds)
        future: pykka.Future[Any] = pykka.ThreadingFuture()
        self._send(
            RemoteAsk(self.name, message, future, self.member, timeout=timeout), kind, payload
        )
        if not block:
            return future
        try:
            return future.get(timeout=seconds + self._settings.ask_timeout)
        except pykka.Timeout:  # the router's own timer should have ended it first
            raise RemoteTimeout(f"no answer within {seconds:g} s") from None

    def _wait(self, ask_id: int, future: pykka.Future[Any], seconds: float) -> Any:
        """The outcome of a direct ask: this thread keeps its time (it has no router timer)."""
        try:
            return future.get(timeout=seconds)
        except pykka.Timeout:
            if self._asks.pop(ask_id) is not None:
                raise RemoteTimeout(f"no answer within {seconds:g} s") from None
        return future.get(timeout=self._settings.ask_timeout)  # it is being settled now

    def _send(self, message: RemoteTell | RemoteAsk, kind: str, payload: bytes) -> None:
        self._gate.acquire(len(payload))
        try:
            self._outbox.put(Admitted(message, kind, payload), self._wake, self._router.tell)
        except (RuntimeError, pykka.ActorDeadError):
            self._gate.release(len(payload))
            raise RuntimeError("this node has stopped: nothing more can be sent") from None

    def _wake(self) -> None:
        self._router.tell(DRAIN)


class Messaging:
    """What a node and a client offer for cluster messaging (``router`` and ``settings`` are set
    by them)."""

    router: pykka.ActorRef[Any]
    gate: FlowGate
    outbox: Outbox
    asks: Asks
    settings: Settings

    def _start_messaging(
        self,
        node_id: str,
        ordering: pykka.ActorRef[Any],
        registry: pykka.ActorRef[Any],
        loop: IoLoop,
        settings: Settings,
        lane: Lane,
    ) -> None:
        """Start this node's router, with its flow gate; ``lane`` is the ordering actor's."""
        self.gate = FlowGate.of(settings)
        self.outbox = Outbox()
        self.asks = Asks(node_id, lane, self.gate)
        self.router = RouterActor.start(
            node_id=node_id,
            ordering=ordering,
            registry=registry,
            scheduler=loop,
            settings=settings,
            gate=self.gate,
            outbox=self.outbox,
            lane=lane,
            asks=self.asks,
        )

    def remote(self, name: str, member: MemberChoice = None) -> RemoteRef:
        """The actor registered as ``name`` on ``member``.

        ``member`` defaults to the router's pick, by ``Settings.load_balancing``.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, not {name!r}")
        return RemoteRef(
            self.router, self.gate, name, member, self.settings, self.outbox, self.asks
        )

    def register(self, name: str, actor: pykka.ActorRef[Any]) -> None:
        """Make ``actor`` reachable as ``name`` from every member and client."""
        self._ask(Register(name, actor))

    def unregister(self, name: str) -> bool:
        """Forget ``name``; True if an actor was registered under it."""
        removed: bool = self._ask(Unregister(name))
        return removed

    def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to every subscriber of ``topic`` on every member (and this node),
        in causal order with the other publishes. Each member it goes to takes a place in the
        flow gate, as a tell does: ``Backpressure`` when there is no room for them all within
        ``ask_timeout`` (at once without ``block_on_backpressure``)."""
        encode_payload(message)
        deadline = time.monotonic() + self.settings.ask_timeout
        while (refused := self._ask(PublishMessage(topic, message))) is not None:
            remaining = deadline - time.monotonic()
            if not (
                isinstance(refused, Backpressure)
                and self.settings.block_on_backpressure
                and remaining > 0
            ):
                raise refused
            self.gate.wait_for_release(min(remaining, 0.05))  # one may come before this waits

    def subscribe(self, topic: str, actor: pykka.ActorRef[Any]) -> None:
        """Tell ``actor`` every message published on ``topic`` from now on."""
        self._ask(SubscribeTopic(topic, actor))

    def unsubscribe(self, topic: str, actor: pykka.ActorRef[Any]) -> bool:
        removed: bool = self._ask(UnsubscribeTopic(topic, actor))
        return removed

    def _ask(self, message: Any) -> Any:
        return ask_actor(self.router, message, self.settings.ask_timeout, "the router")
