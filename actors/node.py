"""Node: the actors of one cluster member, started and stopped together."""

from __future__ import annotations

import abc
import functools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pykka

from actors.discovery import DnsSeeds, SeedFinder
from actors.listeners.callbacks import CallbackRunner, in_callback
from actors.listeners.cluster_service import ClusterService
from actors.listeners.load_balancer import LoadBalancerActor
from actors.listeners.registry import ListenerRegistryActor
from actors.management.latency import LatencyCounts
from actors.management.view import NodeView
from actors.membership import MembershipActor
from actors.messaging.lane import Lane
from actors.messaging.ordering import OrderingActor
from actors.messaging.remote_ref import Messaging
from actors.supervisor import NodeSupervisor
from actors.transport.actor import TransportActor, bind_listener
from actors.transport.loop import IoLoop
from actors.transport.tls import TlsConfig
from messages.address import Address
from messages.local.commands import GetClusterState, Listen, RunCallbacks
from messages.member import Member
from messages.membership.effects import JoinCluster, Leave, Termination, TerminationKind
from messages.messaging.balancing import strategy_named
from messages.settings import HTTP_PORT, PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.handshake import Hello, Role, check_hello

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from actors.management.server import ManagementServer

__all__ = ["LocalActors", "Node", "StopOnExit", "start_member", "stop_wired"]

logger = logging.getLogger(__name__)


class LocalActors:
    """The actors that members and clients share.

    Callback runner, listener registry (``on_fanout``: its fan-out latencies), load balancer.
    """

    def __init__(
        self, settings: Settings, on_fanout: Callable[[float], None] | None = None
    ) -> None:
        self.callbacks = CallbackRunner.start()
        self.listeners = ListenerRegistryActor.start(self.callbacks, on_fanout)
        self.load_balancer = LoadBalancerActor.start(
            self.listeners,
            strategy_named(settings.load_balancing, random.Random()),
            settings.ask_timeout,
        )
        self.cluster = ClusterService(
            self.listeners, self.callbacks, ask_timeout=settings.ask_timeout
        )
        self.cluster.start()

    def drain(self, timeout: float) -> None:
        """Wait until every change told to the registry so far has reached its listeners, the
        callback listeners included (not from inside one: that would wait for itself)."""
        self.listeners.ask(GetClusterState(), timeout=timeout)
        if not in_callback():
            self.callbacks.ask(RunCallbacks(()), timeout=timeout)

    def stop(self) -> None:
        self.cluster.shutdown()
        for ref in (self.load_balancer, self.listeners, self.callbacks):
            ref.stop()


def stop_wired(
    peer: pykka.ActorRef[Any],
    router: pykka.ActorRef[Any],
    ordering: pykka.ActorRef[Any],
    transport: pykka.ActorRef[Any],
) -> None:
    """Stop the wired actors of a node (``peer``: its membership actor) or a client (its client
    actor), each after the ones that tell it things (from a thread other than the I/O thread
    they run on): ``peer`` and the router, then the ordering actor they tell (which drops what
    it still hands them), then the transport they send through, whose last sends (a leaver's
    goodbye to its clients) are queued on their links. The I/O thread's deliveries and timers
    meanwhile find stopped actors and drop what they carry. Its listeners' actors
    (``LocalActors``) stop after, then the I/O thread, whose stop writes what is queued, then
    closes."""
    for ref in (peer, router, ordering, transport):
        ref.stop()


class StopOnExit(abc.ABC):
    """``with start_member(...) as node:`` stops the node (or client) on leaving the block."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop at once; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Node(StopOnExit, Messaging):
    """One cluster member: its actor refs, its ``ClusterService``, cluster messaging, leave/stop.

    ``membership``, ``listeners``, ``load_balancer``, ``router``, ``ordering`` and ``transport``
    are pykka ActorRefs that application actors talk to with the messages of ``messages``.
    Construction binds the address and joins through the seeds; it raises if that fails (and
    leaves nothing running). Once the node has stopped, ``termination`` says why (left, stopped,
    removed by the cluster, or failed). ``seed_dns``: more seeds, looked up while it joins.
    ``metrics`` is its Prometheus ``CollectorRegistry`` (its own, not the global one; made on
    first use, so a member that serves no metrics never imports ``prometheus_client``); with the
    ``http_address`` setting, it serves management over HTTP (docs/operations.md) at
    ``http_address`` (the bound address: port 0 picks one).
    ``dispatcher`` runs its own actors on its I/O thread (``actors.dispatch``, ``IoLoop``): an
    actor started in ``with node.dispatcher.hosting():`` runs there too, and so must never block.
    ``transport`` is for tests: the class of the transport actor, a fault-injecting double
    (tests/support/faulty_transport.py) instead of the real one.
    """

    def __init__(
        self,
        member: Member,
        settings: Settings,
        seeds: tuple[Address, ...],
        *,
        seed_dns: DnsSeeds | None = None,
        transport: type[TransportActor] = TransportActor,
        tls: TlsConfig | None = None,
    ) -> None:
        self.settings = settings
        self._stopped = threading.Event()
        if tls is not None:
            tls.server_context()  # a member needs a certificate: say so before anything starts
        listener = bind_listener(member.address)
        if member.address.port == 0:
            bound = Address(member.address.host, listener.getsockname()[1])
            member = Member.create(
                bound, member.attributes, member.lite_member, member_uuid=member.uuid
            )
        self.member = member
        self._fanout = LatencyCounts()
        self._termination: Termination | None = None
        self._stop_lock = threading.Lock()
        self._loop = IoLoop(WIRE_CODEC, settings, name=f"io-{member.address}", tls=tls)
        self.dispatcher = self._loop.dispatcher
        with self.dispatcher.hosting():  # the node's own actors run on its I/O thread
            self._local = LocalActors(settings, self._fanout.observe)
            self.cluster = self._local.cluster
            self.listeners = self._local.listeners
            self.load_balancer = self._local.load_balancer
            joined: pykka.Future[None] = pykka.ThreadingFuture()
            self._supervisor = NodeSupervisor.start(joined, self._stop)
            routes: dict[Address, int] = {}  # the transport's, for the lane's direct writes
            self._lane = Lane(self._loop, settings, routes)
            self.transport = transport.start(
                loop=self._loop,
                shared_routes=routes,
                listener=listener,
                hello=Hello(
                    cluster_name=settings.cluster_name,
                    protocol_version=PROTOCOL_VERSION,
                    uuid=member.uuid,
                    role=Role.MEMBER,
                    address=member.address,
                ),
                check_hello=functools.partial(check_hello, settings),
                codec=WIRE_CODEC,
                supervisor=self._supervisor,
            )
            self.ordering = OrderingActor.start(
                member.uuid,
                settings,
                self._loop,
                transport=self.transport,
                start_peers=self._start_peers,
                lane=self._lane,
            )
        self._view = NodeView(
            member.address,
            member.uuid,
            self.membership,
            self._loop.traffic,
            lambda: self._loop.link_count,
            settings.http_timeout,
        )
        self._http: ManagementServer | None = None
        # Wired: let the links in.
        self.transport.tell(Listen(deliver_to=self.ordering, peer_news=self.membership))
        discovery = None if seed_dns is None else str(seed_dns)
        self.membership.tell(JoinCluster(seeds=seeds, discovery=discovery))
        finder = None if seed_dns is None else SeedFinder(seed_dns, self.membership, settings)
        if finder is not None:
            finder.start()
        try:
            if settings.http_address is not None:  # probes see the join under way
                self._http = _serve_http(self._view, self.metrics, settings)
            patience = None if settings.join_retry_forever else settings.join_timeout
            joined.get(timeout=None if patience is None else patience + settings.ask_timeout)
        except BaseException:
            self.stop()
            raise
        finally:
            if finder is not None:
                finder.stop()

    def _start_peers(
        self, ordering: pykka.ActorRef[Any]
    ) -> tuple[pykka.ActorRef[Any], pykka.ActorRef[Any]]:
        """Start the membership actor and the router with the ordering actor's ref."""
        self.membership = MembershipActor.start(
            self.member,
            self.listeners,
            self.settings,
            self._loop,
            transport=self.transport,
            supervisor=self._supervisor,
            ordering=ordering,
        )
        self._start_messaging(
            self.uuid, ordering, self.listeners, self._loop, self.settings, self._lane
        )
        return self.membership, self.router

    @property
    def address(self) -> Address:
        return self.member.address

    @property
    def uuid(self) -> str:
        return self.member.uuid

    @functools.cached_property
    def metrics(self) -> CollectorRegistry:
        """Its Prometheus registry, made on first use (the import is a fifth of a member's
        start-up: ``actors.management.latency``)."""
        from actors.management.metrics import node_registry

        return node_registry(self._view, self._fanout)

    @property
    def http_address(self) -> Address | None:
        """Where management over HTTP is served (None: it is off)."""
        return None if self._http is None else self._http.address

    @property
    def is_running(self) -> bool:
        return not self._stopped.is_set()

    @property
    def termination(self) -> Termination | None:
        """Why this node stopped, once it has; None while it runs."""
        if not self._stopped.is_set():
            return None
        return self._termination

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Block until this node has stopped (left, downed, or ``stop()``); True if it has."""
        return self._stopped.wait(timeout)

    def leave(self, timeout: float | None = None) -> bool:
        """Leave gracefully (LEAVING -> EXITING -> REMOVED), then stop. True if removal was seen.

        The member gives up a leave not confirmed within ``leave_timeout`` and the node stops
        (``STOPPED``, as by ``stop()``). This waits at most ``timeout`` (default: that, plus
        ``ask_timeout``) for the node to stop, and stops it if it has not.
        """
        if self._stopped.is_set():
            return False
        try:
            self.membership.ask(Leave(), timeout=self.settings.ask_timeout)
        except (pykka.ActorDeadError, pykka.Timeout) as error:
            logger.warning("Cannot leave gracefully (%r); stopping", error)
            self.stop()
            return False
        if timeout is None:
            timeout = self.settings.leave_timeout + self.settings.ask_timeout
        if not self._stopped.wait(timeout):
            logger.warning(
                "%s did not stop within %g s of leaving; stopping it", self.member, timeout
            )
            self.stop()
        termination = self._termination
        return termination is not None and termination.kind is not TerminationKind.STOPPED

    def stop(self) -> None:
        """Stop this node's actors at once (no leave). Idempotent."""
        self._stop(Termination(TerminationKind.STOPPED, "stop() was called"))

    def _stop(self, termination: Termination) -> None:
        """Stop the node; ``termination`` says why, unless an earlier reason is known. Called by
        ``stop()``, or by the supervisor (in its own turn) when the member is out."""
        with self._stop_lock:
            if self._termination is not None:
                return
            self._termination = termination
        self._supervisor.tell(termination)  # a later report of an actor is no news then
        if self._http is not None:
            self._http.stop()
        stop_wired(self.membership, self.router, self.ordering, self.transport)
        self._local.stop()
        self._supervisor.stop(block=False)
        self._loop.stop()  # and the actors still on it: the supervisor, any hosted there
        self._stopped.set()


def _serve_http(view: NodeView, metrics: CollectorRegistry, settings: Settings) -> ManagementServer:
    """Serve management over HTTP (imported here: ``http.server`` only for a member that does)."""
    from actors.management.endpoints import Endpoints
    from actors.management.server import ManagementServer

    assert settings.http_address is not None
    token = settings.http_token if settings.http_token is not None else settings.secret
    endpoints = Endpoints(view, metrics, token.encode() if isinstance(token, str) else token)
    address = Address.parse(settings.http_address, HTTP_PORT)
    return ManagementServer(address, endpoints, settings.http_timeout)


def start_member(
    cluster_name: str | None = None,
    host: str = "127.0.0.1",
    port: int = 5701,
    seeds: Iterable[str | Address] = (),
    attributes: Mapping[str, str] | None = None,
    lite_member: bool = False,
    *,
    seed_dns: str | DnsSeeds | None = None,
    settings: Settings = Settings.lan(),
    tls: TlsConfig | None = None,
    **overrides: Any,
) -> Node:
    """Start a member on ``host:port`` (port 0: any free port) and join through ``seeds``.

    ``seed_dns`` (``"NAME"``, ``"NAME:PORT"`` or a ``DnsSeeds``) adds the seeds a DNS name
    gives, looked up again every ``seed_dns_interval`` while the member joins (the records may
    change meanwhile); with it, finding no seed yet means waiting for one until
    ``join_timeout``, never forming a cluster alone (docs/operations.md, "Seeds from DNS").

    ``settings`` with ``overrides`` (any of its fields, by name) are the member's timings and
    limits; ``cluster_name``, when given, overrides the settings' own. With no seeds, or only
    itself, it forms a new cluster. ``secret=`` (and ``previous_secret=`` during a key rotation)
    makes every link prove the cluster's shared secret: off by default, production should set it
    (docs/architecture.md#authentication). Raises ``JoinRefusedError`` when the cluster refuses it
    (name or protocol mismatch, failed authentication, a TLS handshake that failed),
    ``JoinTimeoutError`` when no seed answers within ``join_timeout`` (with
    ``join_retry_forever``, it waits until one does), ``OSError`` when the address
    cannot be bound, ``TypeError`` for an unknown setting and ``ValueError`` for a bad value (a
    secret too short, a bad TLS file, say). With ``tls``, every link of the member is TLS, mutual
    (its certificate and key, and the CA its peers' certificates are checked against).
    """
    if cluster_name is not None:
        overrides["cluster_name"] = cluster_name
    member = Member.create(Address(host, port), attributes=attributes, lite_member=lite_member)
    seed_addresses = tuple(Address.parse(seed) for seed in seeds)
    dns_seeds = DnsSeeds.parse(seed_dns) if isinstance(seed_dns, str) else seed_dns
    return Node(member, settings.replace(**overrides), seed_addresses, seed_dns=dns_seeds, tls=tls)
