"""Client mode: watch a cluster from outside it, through one member at a time."""

from __future__ import annotations

import logging
import random
import time
import uuid as uuid_module
from collections.abc import Iterable
from typing import Any

import pykka

from actors.connection import ConnectionActor
from actors.futures import fail
from actors.membership import JoinRefusedError
from actors.node import WIRE_CODEC, LocalActors, StopOnExit
from actors.publisher import StatePublisher
from actors.settings import PROTOCOL_VERSION, Settings
from actors.timers import Timeout
from messages.address import Address
from messages.commands import GetClusterState, GetMembers
from messages.events import CurrentClusterState
from messages.links import Inbound, LinkClosed, Reconnect, Send
from messages.member import select_members
from messages.protocol import ClientUpdate, Hello, HelloRefused, Role, Watch
from messages.state import MembershipState, merge
from messages.validation import InvalidMessage, validate_state
from messages.vector_clock import Causality

logger = logging.getLogger(__name__)


class ClientActor(pykka.ThreadingActor):
    """Holds one link to a member, adopts the states it pushes, and fails over to another member.

    A pushed state is applied only when it is newer than ours (AFTER), or merged when concurrent
    (after a fail-over), so a reconnect fires only real changes and never moves a member backwards.
    ``connected`` (a pykka Future) is set once the first state arrives, or to the error if none can.
    """

    def __init__(
        self,
        *,
        client_uuid: str,
        members: tuple[Address, ...],
        listeners: pykka.ActorRef[Any],
        settings: Settings,
        connected: pykka.Future[None],
    ) -> None:
        super().__init__()
        self._uuid = client_uuid
        self._seeds = members
        self._settings = settings
        self._publisher = StatePublisher(listeners)
        self._connected = connected
        self._is_connected = False
        self._rng = random.Random()
        self._candidates: list[Address] = []
        self._link: pykka.ActorRef[Any] | None = None
        self._peer: Address | None = None
        self._failures = 0
        self._deadline = time.monotonic() + settings.join_timeout
        self._timeout: Timeout | None = None

    def on_start(self) -> None:
        self._connect()

    def on_stop(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if self._link is not None:
            self._link.stop(block=False)

    def on_receive(self, message: Any) -> Any:
        match message:
            case Inbound(message=HelloRefused(reason=reason)):
                self._refused(reason)
            case Inbound(message=ClientUpdate(state=state), link=link, peer=peer) if (
                link is self._link
            ):
                self._on_update(state, peer)
            case Inbound():
                pass  # from a link we have already given up
            case LinkClosed(link=link, reason=reason) if link is self._link:
                log = logger.info if self._is_connected else logger.debug
                log("Lost member %s: %s", self._peer, reason)
                self._link = None
                self._failures += 1
                self._schedule_reconnect()
            case LinkClosed():
                pass
            case Reconnect():
                self._connect()
            case GetMembers(selector=selector):
                return select_members(self._publisher.snapshot.up_members, selector)
            case GetClusterState():
                return self._publisher.snapshot
            case _:
                logger.warning("ClientActor ignores unexpected message %r", message)
        return None

    def _next_candidate(self) -> Address:
        if not self._candidates:
            known = list({*self._seeds, *(m.address for m in self._publisher.state.members)})
            self._rng.shuffle(known)
            known.sort(key=lambda address: address == self._peer)  # the member just lost goes last
            self._candidates = known
        return self._candidates.pop(0)

    def _connect(self) -> None:
        self._peer = self._next_candidate()
        logger.debug("Client connecting to %s", self._peer)
        self._link = ConnectionActor.start(
            codec=WIRE_CODEC,
            deliver_to=self.actor_ref,
            manager=self.actor_ref,
            max_frame_bytes=self._settings.max_frame_bytes,
            io_timeout=self._settings.connect_timeout,
            unacked_timeout=self._settings.unacked_timeout,
            local_uuid=self._uuid,
            peer=self._peer,
            hello=Hello(
                cluster_name=self._settings.cluster_name,
                protocol_version=PROTOCOL_VERSION,
                uuid=self._uuid,
                role=Role.CLIENT,
            ),
        )
        self._link.tell(Send(Watch()))  # dials, says Hello, then asks for the state

    def _schedule_reconnect(self) -> None:
        if not self._is_connected and time.monotonic() >= self._deadline:
            tried = ", ".join(str(seed) for seed in self._seeds)
            self._fail(
                TimeoutError(
                    f"no member answered within {self._settings.join_timeout:g} s (tried {tried})"
                )
            )
            return
        backoff = min(0.1 * 2 ** min(self._failures, 5), 2.0) * self._rng.uniform(0.75, 1.25)
        self._timeout = Timeout(self.actor_ref, Reconnect(), backoff)

    def _on_update(self, state: MembershipState, peer: str) -> None:
        try:
            validate_state(state)
        except InvalidMessage as error:
            logger.warning("Dropped ClientUpdate from %s: it %s", peer, error)
            return
        self._failures = 0
        current = self._publisher.state
        match state.version.compare(current.version):
            case Causality.AFTER:
                self._publisher.publish(state)
            case Causality.CONCURRENT:
                self._publisher.publish(merge(current, state))
            case Causality.SAME | Causality.BEFORE:
                pass
        if not self._is_connected:
            self._is_connected = True
            self._connected.set(None)

    def _refused(self, reason: str) -> None:
        logger.error("Member %s refused this client: %s", self._peer, reason)
        if not self._is_connected:
            self._fail(JoinRefusedError(reason))

    def _fail(self, error: Exception) -> None:
        if not self._is_connected:
            self._is_connected = True  # the future is settled; stop trying
            fail(self._connected, error)
        self.actor_ref.stop(block=False)


class Client(StopOnExit):
    """A watcher of the cluster: ``.cluster`` is the same ``ClusterService`` API as a member's."""

    def __init__(self, members: tuple[Address, ...], settings: Settings) -> None:
        if not members:
            raise ValueError("a client needs at least one member address to connect to")
        self.settings = settings
        self.uuid = str(uuid_module.uuid4())
        self._local = LocalActors(settings)
        self.cluster = self._local.cluster
        self.listeners = self._local.listeners
        self.load_balancer = self._local.load_balancer
        connected: pykka.Future[None] = pykka.ThreadingFuture()
        self.actor = ClientActor.start(
            client_uuid=self.uuid,
            members=members,
            listeners=self.listeners,
            settings=settings,
            connected=connected,
        )
        try:
            connected.get(timeout=settings.join_timeout + settings.ask_timeout)
        except BaseException:
            self.stop()
            raise

    def cluster_state(self) -> CurrentClusterState:
        """The latest ``CurrentClusterState`` pushed by the member."""
        state: CurrentClusterState = self.actor.ask(
            GetClusterState(), block=True, timeout=self.settings.ask_timeout
        )
        return state

    def stop(self) -> None:
        self.actor.stop()
        self._local.stop()


def start_client(
    cluster_name: str = "dev",
    members: Iterable[str | Address] = ("127.0.0.1:5701",),
    **timings: Any,
) -> Client:
    """Connect to one of ``members`` (shuffled, with backoff) and mirror the cluster's membership."""
    settings = Settings(cluster_name=cluster_name, **timings)
    return Client(tuple(Address.parse(member) for member in members), settings)
