"""Client mode: watch a cluster from outside it, through one member at a time."""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid as uuid_module
from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors.dispatch.actor import DispatchedActor
from actors.listeners.lifecycle import LifecycleService
from actors.messaging.futures import ask, fail
from actors.messaging.lane import Lane
from actors.messaging.ordering import OrderingActor
from actors.messaging.remote_ref import Messaging
from actors.node import LocalActors, StopOnExit, stop_wired
from actors.supervisor import JoinRefusedError
from actors.transport.actor import TransportActor
from actors.transport.loop import IoLoop
from actors.transport.timers import Timer
from actors.transport.tls import TlsConfig
from messages.address import Address
from messages.events import (
    ClientConnected,
    ClientDisconnected,
    ClientShutdown,
    ClientShuttingDown,
    ClientStarting,
    ClusterEvent,
    CurrentClusterState,
    LifecycleState,
)
from messages.local.commands import GetClusterState, GetConnection, Listen, MemberCallback
from messages.local.links import LinkClosed, Reconnect, WatchOverdue
from messages.membership.effects import Inbound, MembershipReached
from messages.membership.protocol import ClientUpdate, Watch
from messages.membership.publication import Publication, follow
from messages.membership.state import MembershipState
from messages.membership.validation import InvalidMessage, validate_state
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import encode_frame
from messages.wire.handshake import Hello, HelloRefused, Role, check_hello

__all__ = ["DEFAULT_PORTS", "Client", "ClientActor", "member_addresses", "start_client"]

logger = logging.getLogger(__name__)


class ClientActor(DispatchedActor):
    """Holds one link to a member, follows the view that member pushes, and fails over to another.

    How a pushed state changes the view is ``messages.membership.publication.follow``: after a
    (re)connection the member's view is reconciled with the client's (replacing it when the member
    belongs to another cluster incarnation), then followed as the member pushes it. While it has no
    member the client keeps its last view. Each connection and loss is announced as
    ``ClientConnected`` and ``ClientDisconnected``. ``started`` (a pykka Future) is set once the
    first state arrives, or to the error, with the last connection failure in it, if none comes
    within ``join_timeout``.
    """

    def __init__(
        self,
        *,
        client_uuid: str,
        members: tuple[Address, ...],
        listeners: pykka.ActorRef[Any],
        settings: Settings,
        loop: IoLoop,
        ordering: pykka.ActorRef[Any],
        started: pykka.Future[None],
    ) -> None:
        super().__init__()
        self._uuid = client_uuid
        self._seeds = members
        self._settings = settings
        self._listeners = listeners
        self._published = Publication()
        self._started = started
        self._start_settled = False
        self._rng = random.Random()
        self._candidates: list[Address] = []
        self._loop = loop
        self._ordering = ordering
        self._link: int | None = None
        self._peer: Address | None = None
        self._connected_to: Address | None = None
        self._in_step = False
        self._last_failure = ""
        self._failures = 0
        self._deadline = time.monotonic() + settings.join_timeout
        self._timeout: Timer | None = None

    def on_start(self) -> None:
        self._announce(ClientStarting(self._published.sequence))
        self._connect()

    def on_stop(self) -> None:
        self._announce(ClientShuttingDown(self._published.sequence))
        if self._timeout is not None:
            self._timeout.cancel()
        if self._link is not None:
            self._loop.close(self._link, "the client stops")
        self._announce(ClientShutdown(self._published.sequence))

    def on_receive(self, message: Any) -> Any:
        match message:
            case Inbound(message=HelloRefused(reason=reason)):
                self._refused(reason)
            case Inbound(message=ClientUpdate(state=state), link=link, peer=peer) if (
                link == self._link
            ):
                self._on_update(state, peer)
            case Inbound():
                pass  # from a link we have already given up
            case LinkClosed(link=link, reason=reason) if link == self._link:
                self._on_link_closed(reason)
            case LinkClosed():
                pass
            case Reconnect():
                self._connect()
            case WatchOverdue(link=link) if link == self._link and self._connected_to is None:
                reason = f"no answer to Watch within {self._settings.handshake_timeout:g} s"
                self._loop.close(link, reason)  # its LinkClosed makes the client try the next
            case WatchOverdue():
                pass  # answered, or given up already
            case GetClusterState():
                return self._published.snapshot
            case GetConnection():
                return self._connected_to
            case _:
                logger.warning("ClientActor ignores unexpected message %r", message)
        return None

    def _announce(self, event: ClusterEvent) -> None:
        self._listeners.tell(self._published.announce(event))

    def _next_candidate(self) -> Address:
        if not self._candidates:
            known = list({*self._seeds, *(m.address for m in self._published.state.members)})
            self._rng.shuffle(known)
            known.sort(key=lambda address: address == self._peer)  # the member just lost goes last
            self._candidates = known
        return self._candidates.pop(0)

    def _connect(self) -> None:
        self._peer = self._next_candidate()
        self._in_step = False
        logger.debug("Client connecting to %s", self._peer)
        hello = Hello(
            cluster_name=self._settings.cluster_name,
            protocol_version=PROTOCOL_VERSION,
            uuid=self._uuid,
            role=Role.CLIENT,
        )
        self._link = self._loop.dial(
            self._peer,
            encode_frame(WIRE_CODEC.encode(Watch())),
            hello=hello,
            deliver_to=self.actor_ref,
            manager=self.actor_ref,
        )
        overdue = WatchOverdue(self._link)
        self._loop.call_later(self._settings.handshake_timeout, self.actor_ref, overdue)

    def _on_link_closed(self, reason: str) -> None:
        self._link = None
        self._last_failure = reason
        self._failures += 1
        lost = self._connected_to
        if lost is not None:
            logger.info(
                "Lost member %s: %s; keeping the last view while reconnecting", lost, reason
            )
            self._connected_to = None
            self._announce(ClientDisconnected(self._published.sequence, lost, reason))
        else:
            logger.debug("No answer from %s: %s", self._peer, reason)
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if not self._start_settled and time.monotonic() >= self._deadline:
            tried = ", ".join(str(seed) for seed in self._seeds)
            self._fail(
                TimeoutError(
                    f"no member answered within {self._settings.join_timeout:g} s (tried {tried});"
                    f" last failure: {self._last_failure}"
                )
            )
            return
        settings = self._settings
        backoff = settings.backoff(settings.reconnect_backoff, self._failures, self._rng.random())
        if not self._start_settled:
            backoff = min(backoff, max(self._deadline - time.monotonic(), 0.0))
        self._timeout = self._loop.call_later(backoff, self.actor_ref, Reconnect())

    def _on_update(self, state: MembershipState, peer: str) -> None:
        try:
            validate_state(state)
        except InvalidMessage as error:
            logger.warning("Dropped ClientUpdate from %s: it %s", peer, error)
            return
        self._failures = 0
        previous = self._published.state
        view, self._in_step = follow(previous, state, self._in_step)
        self._published, changed = self._published.publish(view)
        if changed is not None:
            self._listeners.tell(changed)
        if view is not previous:
            self._ordering.tell(MembershipReached(view.version, view.tombstoned))
        if self._connected_to is None and self._peer is not None:
            self._connected_to = self._peer
            logger.info("Client connected to %s", self._peer)
            self._announce(ClientConnected(self._published.sequence, self._peer))
        if not self._start_settled:
            self._start_settled = True
            self._started.set(None)

    def _refused(self, reason: str) -> None:
        logger.error("Member %s refused this client: %s", self._peer, reason)
        if not self._start_settled:
            self._fail(JoinRefusedError(reason))

    def _fail(self, error: Exception) -> None:
        if not self._start_settled:
            self._start_settled = True  # the future is settled; stop trying
            fail(self._started, error)
        self.actor_ref.stop(block=False)


class Client(StopOnExit, Messaging):
    """A watcher of the cluster: ``.cluster`` is the same ``ClusterService`` API as a member's,
    and ``remote`` and ``publish`` reach the members' actors as from a member (a client is no
    member: its own actors cannot be registered for others, nor subscribe to publishes).

    ``lifecycle`` takes Hazelcast-style lifecycle listeners; ``connected`` says whether the client
    has a member right now. Without one it keeps the last view it had, and reconnects to a known
    member with backoff. Listeners given to the constructor are registered before it connects, and
    have heard the first member list and ``CONNECTED`` when it returns (as in Hazelcast).
    """

    def __init__(
        self,
        members: tuple[Address, ...],
        settings: Settings,
        lifecycle_listeners: Iterable[Callable[[LifecycleState], Any]] = (),
        membership_listeners: Iterable[MembershipListener] = (),
        tls: TlsConfig | None = None,
    ) -> None:
        if not members:
            raise ValueError("a client needs at least one member address to connect to")
        self.settings = settings
        self.uuid = str(uuid_module.uuid4())
        self._loop = IoLoop(WIRE_CODEC, settings, name=f"client-io-{self.uuid[:8]}", tls=tls)
        with self._loop.dispatcher.hosting():  # the client's own actors run on its I/O thread
            self._local = LocalActors(settings)
            self.cluster = self._local.cluster
            self.listeners = self._local.listeners
            self.load_balancer = self._local.load_balancer
            self.lifecycle = LifecycleService(self.cluster)
            routes: dict[Address, int] = {}  # the transport's, for the lane's direct writes
            lane = Lane(self._loop, settings, routes)
            self.transport = TransportActor.start(
                loop=self._loop,
                shared_routes=routes,
                listener=None,
                hello=Hello(settings.cluster_name, PROTOCOL_VERSION, self.uuid, Role.CLIENT),
                check_hello=functools.partial(check_hello, settings),
                codec=WIRE_CODEC,
            )
            for on_change in lifecycle_listeners:
                self.lifecycle.add_listener(on_change)
            for member_added, member_removed in membership_listeners:
                self.cluster.add_listener(member_added, member_removed)
            started: pykka.Future[None] = pykka.ThreadingFuture()

            def start_peers(
                ordering: pykka.ActorRef[Any],
            ) -> tuple[pykka.ActorRef[Any], pykka.ActorRef[Any]]:
                """Start the client actor (it connects at once) and the router, with
                ``ordering``."""
                self.actor = ClientActor.start(
                    client_uuid=self.uuid,
                    members=members,
                    listeners=self.listeners,
                    settings=settings,
                    loop=self._loop,
                    ordering=ordering,
                    started=started,
                )
                self._start_messaging(
                    self.uuid, ordering, self.listeners, self._loop, settings, lane
                )
                return self.actor, self.router

            self.ordering = OrderingActor.start(
                self.uuid,
                settings,
                self._loop,
                transport=self.transport,
                start_peers=start_peers,
                client=True,
                lane=lane,
            )
        self.transport.tell(Listen(deliver_to=self.ordering))
        try:
            started.get(timeout=settings.join_timeout + settings.ask_timeout)
            self._local.drain(settings.ask_timeout)
        except BaseException:
            self.stop()
            raise

    def register(self, name: str, actor: pykka.ActorRef[Any]) -> None:
        """Not for a client: members have no way to reach it."""
        raise TypeError(
            "a client is no member: register actors on a member, where others reach them"
        )

    def subscribe(self, topic: str, actor: pykka.ActorRef[Any]) -> None:
        """Not for a client: publishes go to the members' subscribers."""
        raise TypeError("a client is no member: publishes go to the subscribers on members")

    @property
    def connected(self) -> bool:
        """True while the client has a member whose view it follows."""
        member: Address | None = ask(
            self.actor, GetConnection(), self.settings.ask_timeout, "the client"
        )
        return member is not None

    def cluster_state(self) -> CurrentClusterState:
        """The latest ``CurrentClusterState`` pushed by the member."""
        state: CurrentClusterState = ask(
            self.actor, GetClusterState(), self.settings.ask_timeout, "the client"
        )
        return state

    def stop(self) -> None:
        """Stop the client (``SHUTTING_DOWN``, then ``SHUTDOWN``, both heard by the listeners
        before this returns). Idempotent."""
        stop_wired(self.actor, self.router, self.ordering, self.transport)
        if self.listeners.is_alive():
            self._local.drain(self.settings.ask_timeout)
        self._local.stop()
        self._loop.stop()


MembershipListener = tuple[MemberCallback | None, MemberCallback | None]
"""``(member_added, member_removed)``, as in Hazelcast's ``membership_listeners``."""

DEFAULT_PORTS = (5701, 5702, 5703)
"""The ports a member address without one stands for (Hazelcast's default port range)."""


def member_addresses(members: Iterable[str | Address]) -> tuple[Address, ...]:
    """The addresses to try: each given one, a host without a port standing for ports
    ``DEFAULT_PORTS`` (as in Hazelcast), duplicates dropped, order kept."""
    addresses: dict[Address, None] = {}
    for member in members:
        first = Address.parse(member, DEFAULT_PORTS[0])
        if first != Address.parse(member, DEFAULT_PORTS[1]):  # no port given
            addresses.update((Address(first.host, port), None) for port in DEFAULT_PORTS)
        else:
            addresses[first] = None
    return tuple(addresses)


def start_client(
    cluster_name: str | None = None,
    members: Iterable[str | Address] = ("127.0.0.1",),
    lifecycle_listeners: Iterable[Callable[[LifecycleState], Any]] = (),
    membership_listeners: Iterable[MembershipListener] = (),
    *,
    settings: Settings = Settings.lan(),
    tls: TlsConfig | None = None,
    **overrides: Any,
) -> Client:
    """Connect to one of ``members`` (shuffled, with backoff) and mirror the cluster's membership.

    A member given without a port stands for ports 5701 to 5703. ``lifecycle_listeners`` (functions
    of a ``LifecycleState``) and ``membership_listeners`` (``(member_added, member_removed)`` pairs)
    are registered before the first connection and have heard it when this returns. ``settings``,
    ``overrides`` and ``cluster_name`` are as for ``start_member`` (``secret=``: the cluster's
    shared secret, which production should set). Raises ``JoinRefusedError`` when a member refuses
    the client (another cluster name or protocol version, failed authentication, a TLS handshake
    that failed), ``TimeoutError`` (with the last connection failure) when no member answers
    within ``join_timeout``. With ``tls``, its links are TLS (it shows its certificate if the
    config has one).
    """
    if cluster_name is not None:
        overrides["cluster_name"] = cluster_name
    return Client(
        member_addresses(members),
        settings.replace(**overrides),
        lifecycle_listeners,
        membership_listeners,
        tls,
    )
