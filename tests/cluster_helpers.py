"""Shared helpers for cluster tests: fast timings, recorded nodes, waits and event invariants.

In-process tests start several members in one process with ``ClusterHarness``; every node (or
client) is wrapped in a ``WatchedNode`` whose ``EventRecorder`` subscribed right after the start
(with the state replayed as events, atomically), so its history is complete. Wait on conditions
over those histories (``WatchedNode.wait``, ``ClusterHarness.wait_all``), never with sleeps, and
finish every multi-node test with ``ClusterHarness.check_invariants()`` (or call
``check_event_invariants`` directly, e.g. on events parsed from a subprocess). ``RawLink`` speaks
the wire protocol by hand (bad input, probes); ``fetch_state`` and ``wait_converged`` read a
member's full gossip state through it, the only outside view of the seen set (convergence).
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pykka
from support.faulty_transport import BlockPeers, FaultyTransport

from actors.client import Client, start_client
from actors.listeners.recorder import record_events, wait_until
from actors.node import Node
from messages.address import Address
from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
    MemberUp,
)
from messages.local.commands import GetClusterState, GetEvents
from messages.member import Member, MemberStatus
from messages.membership.protocol import ClientUpdate, Watch
from messages.membership.state import MembershipState
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import Hello, HelloAccepted, Role

EventPredicate = Callable[[tuple[ClusterEvent, ...]], bool]

STEP_TIMEOUT = 20.0
"""Upper bound of one wait in a test (a healthy run needs a small fraction of it)."""

# Status events that happen at most once per member, in lifecycle order.
_LIFECYCLE: dict[type[MemberEvent], int] = {
    MemberJoined: 0,
    MemberUp: 1,
    MemberLeft: 2,
    MemberExited: 3,
    MemberDowned: 4,
    MemberRemoved: 5,
}


# -- predicates over an event history -----------------------------------------------------------


def up_uuids(events: Iterable[ClusterEvent]) -> set[str]:
    """Members that have had MemberUp and no MemberRemoved in ``events``."""
    up: set[str] = set()
    for event in events:
        if isinstance(event, MemberUp):
            up.add(event.member.uuid)
        elif isinstance(event, MemberRemoved):
            up.discard(event.member.uuid)
    return up


def all_up(uuids: Iterable[str]) -> EventPredicate:
    """Predicate: every member of ``uuids`` is up (seen MemberUp, not removed)."""
    wanted = frozenset(uuids)
    return lambda events: wanted <= up_uuids(events)


def saw(kind: type[MemberEvent], uuid: str) -> EventPredicate:
    """Predicate: an event of type ``kind`` about member ``uuid`` has arrived."""
    return lambda events: any(isinstance(e, kind) and e.member.uuid == uuid for e in events)


def _reaches(version: int) -> EventPredicate:
    """Predicate: the recorder has the events of state version ``version`` (or later ones)."""
    return lambda events: version == 0 or (bool(events) and events[-1].version >= version)


def events_about(
    events: Iterable[ClusterEvent], uuid: str, kind: type[MemberEvent] = MemberEvent
) -> list[MemberEvent]:
    """The events of type ``kind`` about member ``uuid``, in order."""
    return [e for e in events if isinstance(e, kind) and e.member.uuid == uuid]


# -- the invariant checker ------------------------------------------------------------------


def check_event_invariants(
    events: Sequence[ClusterEvent], final_state: CurrentClusterState | None = None
) -> None:
    """Assert what docs/architecture.md ("Events") promises about one node's event history.

    Per member: each lifecycle event (Joined, Up, Left, Exited, Downed, Removed) at most once and
    in lifecycle order (so MemberUp comes before MemberRemoved), nothing after MemberRemoved, and
    MemberUnreachable/MemberReachable alternating, starting with MemberUnreachable. Event versions
    never decrease. With ``final_state`` (the node's ``CurrentClusterState`` at the version of the
    last event), replaying the events must give its members and statuses, its unreachable set and
    its leader. Raises AssertionError listing every violation.
    """
    problems: list[str] = []
    last_version = 0
    members: dict[str, MemberEvent] = {}  # latest event of each member not removed
    lifecycle: dict[str, list[type[MemberEvent]]] = {}
    removed: set[str] = set()
    unreachable: set[str] = set()
    leader: Address | None = None
    for index, event in enumerate(events):
        where = f"event {index} {type(event).__name__}"
        if event.version < last_version:
            problems.append(f"{where}: version {event.version} after version {last_version}")
        last_version = max(last_version, event.version)
        if isinstance(event, LeaderChanged):
            leader = event.leader
            continue
        if not isinstance(event, MemberEvent):
            continue
        uuid = event.member.uuid
        where += f" for {event.member.address}/{uuid[:8]}"
        if uuid in removed:
            problems.append(f"{where}: arrives after MemberRemoved")
        kind = type(event)
        if kind in _LIFECYCLE:
            seen = lifecycle.setdefault(uuid, [])
            if kind in seen:
                problems.append(f"{where}: duplicate")
            elif seen and _LIFECYCLE[seen[-1]] > _LIFECYCLE[kind]:
                problems.append(f"{where}: after {seen[-1].__name__} (lifecycle goes backwards)")
            seen.append(kind)
        elif kind is MemberUnreachable:
            if uuid in unreachable:
                problems.append(f"{where}: already unreachable")
            unreachable.add(uuid)
        elif kind is MemberReachable:
            if uuid not in unreachable:
                problems.append(f"{where}: was not unreachable")
            unreachable.discard(uuid)
        if kind is MemberRemoved:
            removed.add(uuid)
            members.pop(uuid, None)
            unreachable.discard(uuid)
        else:
            members[uuid] = event
    if final_state is not None:
        problems += _compare_replay(members, unreachable, leader, final_state)
    assert not problems, "event invariants violated:\n  " + "\n  ".join(problems)


def _compare_replay(
    members: dict[str, MemberEvent],
    unreachable: set[str],
    leader: Address | None,
    final_state: CurrentClusterState,
) -> list[str]:
    problems = []
    replayed = {uuid: event.member.status for uuid, event in members.items()}
    final = {member.uuid: member.status for member in final_state.members}
    if replayed != final:
        problems.append(
            f"replayed members {_statuses(replayed)} differ from the final state {_statuses(final)}"
        )
    if unreachable != set(final_state.unreachable):
        problems.append(
            f"replayed unreachable {sorted(unreachable)} differ from the final state "
            f"{sorted(final_state.unreachable)}"
        )
    if leader != final_state.leader:
        problems.append(
            f"replayed leader {leader} differs from the final state {final_state.leader}"
        )
    return problems


def _statuses(members: dict[str, MemberStatus]) -> str:
    return "{" + ", ".join(f"{u[:8]}: {s.name}" for u, s in sorted(members.items())) + "}"


# -- raw wire access -------------------------------------------------------------------------


class RawLink:
    """A plain TCP socket to a member that speaks the wire protocol by hand (frames, messages).

    For probing a member from outside (its full gossip state, as a client sees it) and for sending
    it bad input. Every read has a deadline; ``read_to_eof`` tells whether the member closed.
    """

    def __init__(self, address: Address, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((address.host, address.port), timeout=timeout)
        self._decoder = FrameDecoder()
        self._pending: list[bytes] = []

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: Any) -> None:
        """Send one wire message (a type of ``messages.wire.codec.WIRE_TYPES``) as one frame."""
        self.send_bytes(encode_frame(WIRE_CODEC.encode(message)))

    def hello(
        self,
        cluster_name: str,
        role: Role = Role.CLIENT,
        uuid: str | None = None,
        address: Address | None = None,
    ) -> None:
        """Say Hello (as ``uuid`` at ``address``: a made-up uuid and no address by default) and
        expect HelloAccepted (AssertionError otherwise)."""
        self.send(
            Hello(
                cluster_name=cluster_name,
                protocol_version=PROTOCOL_VERSION,
                uuid=uuid or str(uuid_module.uuid4()),
                role=role,
                address=address,
            )
        )
        answer = self.receive()
        assert isinstance(answer, HelloAccepted), f"handshake answered with {answer!r}"

    def receive(self, kind: type[Any] = object) -> Any:
        """The next message of type ``kind`` (earlier messages of other types are skipped)."""
        deadline = time.monotonic() + self.timeout
        while True:
            while self._pending:
                message = WIRE_CODEC.decode(self._pending.pop(0))
                if isinstance(message, kind):
                    return message
            data = self._recv(deadline)
            if not data:
                raise AssertionError(f"the member closed the link before sending a {kind}")
            self._pending += self._decoder.feed(data)

    def read_to_eof(self) -> bool:
        """Read (and drop) until the member closes the link; False if it is still open at the
        deadline. A reset counts as closed."""
        deadline = time.monotonic() + self.timeout
        try:
            while self._recv(deadline):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        return True

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from the member in time")
        self.sock.settimeout(remaining)
        return self.sock.recv(65536)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def fetch_state(address: Address, cluster_name: str, timeout: float = 5.0) -> MembershipState:
    """The full membership state (with seen set and reachability) of the member at ``address``."""
    with RawLink(address, timeout) as link:
        link.hello(cluster_name)
        link.send(Watch())
        update: ClientUpdate = link.receive(ClientUpdate)
        return update.state


def wait_converged(
    addresses: Iterable[Address], cluster_name: str, settle: float, timeout: float = STEP_TIMEOUT
) -> None:
    """Wait until every member at ``addresses`` holds a converged state, twice in a row at least
    ``settle`` seconds apart (so its periodic leader tick has seen the convergence too)."""
    addresses = list(addresses)
    deadline = time.monotonic() + timeout
    converged_since: float | None = None
    idle = threading.Event()
    while True:
        states = [fetch_state(address, cluster_name) for address in addresses]
        now = time.monotonic()
        if all(state.is_converged() for state in states):
            converged_since = converged_since or now
            if now - converged_since >= settle:
                return
        else:
            converged_since = None
        assert now < deadline, f"no convergence within {timeout:g} s: {states!r}"
        idle.wait(settle / 4)


# -- recorded nodes -------------------------------------------------------------------------


@dataclasses.dataclass
class WatchedNode:
    """A member ``Node`` or a ``Client`` with an event recorder subscribed since its start.

    ``state_actor`` answers ``GetClusterState`` with the owner's current state (the membership
    actor of a node, the client actor of a client): the truth the recorded events must replay to.
    """

    owner: Node | Client
    recorder: pykka.ActorRef[Any]
    state_actor: pykka.ActorRef[Any]

    @classmethod
    def of_node(cls, node: Node) -> WatchedNode:
        return cls(node, record_events(node.listeners), node.membership)

    @classmethod
    def of_client(cls, client: Client) -> WatchedNode:
        return cls(client, record_events(client.listeners), client.actor)

    @property
    def node(self) -> Node:
        assert isinstance(self.owner, Node), f"{self.owner!r} is a client, not a member"
        return self.owner

    @property
    def uuid(self) -> str:
        return self.owner.uuid

    @property
    def address(self) -> Address:
        return self.node.address

    @property
    def is_running(self) -> bool:
        return (
            self.owner.actor.is_alive() if isinstance(self.owner, Client) else self.owner.is_running
        )

    def member_uuids(self) -> set[str]:
        """The uuids of ``cluster.get_members()`` (the Hazelcast view: up, not removed)."""
        return {member.uuid for member in self.owner.cluster.get_members()}

    def events(self) -> tuple[ClusterEvent, ...]:
        """Every event recorded so far, in order."""
        events: tuple[ClusterEvent, ...] = self.recorder.ask(
            GetEvents(), block=True, timeout=STEP_TIMEOUT
        )
        return events

    def wait(
        self, predicate: EventPredicate, timeout: float = STEP_TIMEOUT, what: str = "condition"
    ) -> tuple[ClusterEvent, ...]:
        """Block until ``predicate`` holds on the recorded events.

        AssertionError after ``timeout``.
        """
        try:
            return wait_until(self.recorder, predicate, timeout)
        except pykka.Timeout:
            raise AssertionError(
                f"{what} not reached within {timeout:g} s at {self}; events:\n"
                + "\n".join(f"  {e!r}" for e in self.events())
            ) from None

    def settled(
        self, timeout: float = STEP_TIMEOUT
    ) -> tuple[tuple[ClusterEvent, ...], CurrentClusterState]:
        """The events and the owner's current state once the recorder has every event of it."""
        deadline = time.monotonic() + timeout
        while True:
            state: CurrentClusterState = self.state_actor.ask(
                GetClusterState(), block=True, timeout=timeout
            )
            remaining = max(deadline - time.monotonic(), 0.01)
            events = self.wait(
                _reaches(state.version), remaining, f"events up to state version {state.version}"
            )
            if events[-1].version == state.version:
                return events, state

    def check_invariants(self) -> None:
        """``check_event_invariants`` on this history (against the final state while running)."""
        if self.is_running:
            events, state = self.settled()
            check_event_invariants(events, state)
        else:
            check_event_invariants(self.events())

    def __str__(self) -> str:
        kind = "client" if isinstance(self.owner, Client) else f"member {self.owner.address}"
        return f"{kind} {self.uuid[:8]}"


class ClusterHarness:
    """Starts in-process members (and clients) on 127.0.0.1 with fast timings; ``close`` ends all.

    Each harness uses its own cluster name. ``start`` joins through the first member started
    (or forms the cluster when it is the first). Use as a context manager or pytest fixture.
    """

    def __init__(self, cluster_name: str | None = None, **overrides: Any) -> None:
        self.cluster_name = cluster_name or f"test-{uuid_module.uuid4().hex[:8]}"
        self.settings = Settings.fast_test(cluster_name=self.cluster_name, **overrides)
        self.nodes: list[WatchedNode] = []
        self.clients: list[WatchedNode] = []
        self._lock = threading.Lock()

    @property
    def seed(self) -> Address:
        return self.nodes[0].address

    def running(self) -> list[WatchedNode]:
        return [node for node in self.nodes if node.is_running]

    def start(
        self, seeds: Sequence[Address | str] | None = None, port: int = 0, **overrides: Any
    ) -> WatchedNode:
        """Start one member (its transport a ``FaultyTransport``) and its recorder. Thread-safe, so
        joins can run concurrently."""
        if seeds is None:
            seeds = [self.seed] if self.nodes else []
        node = Node(  # what start_member does, with a transport that takes injected faults
            Member.create(Address("127.0.0.1", port)),
            self.settings.replace(**overrides),
            tuple(Address.parse(seed) for seed in seeds),
            transport=FaultyTransport,
        )
        watched = WatchedNode.of_node(node)
        with self._lock:
            self.nodes.append(watched)
        return watched

    def start_many(self, count: int, concurrently: bool = False) -> list[WatchedNode]:
        """Start ``count`` members joining through the seed, one by one or all at once (threads)."""
        if not concurrently:
            return [self.start() for _ in range(count)]
        seeds = [self.seed]
        started: list[WatchedNode] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(count)

        def join() -> None:
            try:
                barrier.wait(timeout=STEP_TIMEOUT)
                started.append(self.start(seeds))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=join, name=f"joiner-{i}") for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.settings.join_timeout + self.settings.ask_timeout + STEP_TIMEOUT)
        assert not errors, f"concurrent joins failed: {errors!r}"
        assert len(started) == count, f"only {len(started)} of {count} joins finished"
        return started

    def start_client(self, members: Sequence[Address], **overrides: Any) -> WatchedNode:
        """Start a client watching through ``members``, with its recorder."""
        client = start_client(members=members, settings=self.settings, **overrides)
        watched = WatchedNode.of_client(client)
        self.clients.append(watched)
        return watched

    def wait_all(
        self,
        predicate: EventPredicate,
        nodes: Iterable[WatchedNode] | None = None,
        timeout: float = STEP_TIMEOUT,
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate`` holds at every node of ``nodes`` (default: the running ones)."""
        deadline = time.monotonic() + timeout
        for node in self.running() if nodes is None else nodes:
            node.wait(predicate, max(deadline - time.monotonic(), 0.01), what)

    def wait_all_up(
        self, uuids: Iterable[str] | None = None, nodes: Iterable[WatchedNode] | None = None
    ) -> None:
        """Wait until ``uuids`` (default: the running members) are up at every one of ``nodes``."""
        wanted = {n.uuid for n in self.running()} if uuids is None else set(uuids)
        self.wait_all(all_up(wanted), nodes, what=f"all of {len(wanted)} members up")

    def wait_converged(self, nodes: Iterable[WatchedNode] | None = None) -> None:
        """``wait_converged`` at ``nodes`` (default: the running members)."""
        wait_converged(
            (node.address for node in (self.running() if nodes is None else nodes)),
            self.cluster_name,
            settle=self.settings.gossip_interval,
        )

    def check_invariants(self) -> None:
        """``check_event_invariants`` for every node and client started by this harness."""
        for watched in [*self.nodes, *self.clients]:
            watched.check_invariants()

    def close(self) -> None:
        """Stop every client, node and recorder (idempotent)."""
        for watched in [*self.clients, *self.nodes]:
            watched.owner.stop()
            watched.recorder.stop()

    def __enter__(self) -> ClusterHarness:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- stand-ins for actors -----------------------------------------------------------------


class Received:
    """What a ``Sink`` was told, or what a listener callback (this object itself) was called
    with, in order; the test thread waits on it."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.condition = threading.Condition()

    def add(self, message: Any) -> None:
        with self.condition:
            self.messages.append(message)
            self.condition.notify_all()

    def __call__(self, message: Any) -> None:
        self.add(message)

    def wait_for(self, predicate: Callable[[list[Any]], bool]) -> list[Any]:
        """The messages once ``predicate`` holds of them; AssertionError after ``STEP_TIMEOUT``."""
        with self.condition:
            assert self.condition.wait_for(lambda: predicate(self.messages), STEP_TIMEOUT), (
                self.messages
            )
            return list(self.messages)

    def wait_count(self, count: int) -> list[Any]:
        """The messages once there are ``count`` of them (or more)."""
        return self.wait_for(lambda messages: len(messages) >= count)


class Keeping(pykka.Actor):
    """Stands in for an actor: keeps what it is told in ``received`` (with a kind of actor:
    ``Sink``, or a ``DispatchedActor`` to run on a dispatcher)."""

    def __init__(self, received: Received) -> None:
        super().__init__()
        self.received = received

    def on_receive(self, message: Any) -> Any:
        self.received.add(message)
        return None


class Sink(Keeping, pykka.ThreadingActor):
    """A ``Keeping`` actor with a thread of its own."""


# -- network faults -----------------------------------------------------------------------


def poll_until(condition: Callable[[], bool], what: str, timeout: float = STEP_TIMEOUT) -> None:
    """Check ``condition`` (cheap and local) every 10 ms until it holds; AssertionError after
    ``timeout``. For states no event announces (a flow gate's counters, a socket's end): where an
    event, a future or a recorded event exists, tests wait on that instead."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a wait on it is an interruptible 10 ms pause
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        pause.wait(0.01)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def partition(harness: ClusterHarness) -> tuple[list[WatchedNode], list[WatchedNode]]:
    """Split the nodes 3 | 2 (BlockPeers both ways); returns (majority, minority).

    The minority holds the highest addresses, so even a tie in a stale converged view
    (keep-majority breaks ties by the lowest address) keeps the majority side alive.
    """
    by_address = sorted(harness.nodes, key=lambda node: node.address)
    majority, minority = by_address[:3], by_address[3:]
    for side, other in ((majority, minority), (minority, majority)):
        blocked = frozenset(node.address for node in other)
        for node in side:
            node.node.transport.tell(BlockPeers(blocked))
    return majority, minority


def heal(nodes: Iterable[WatchedNode]) -> None:
    """Lift every block at ``nodes`` (links that lost frames stay stalled until re-dialled)."""
    for node in nodes:
        if node.is_running:
            node.node.transport.tell(BlockPeers(frozenset()))


def assert_minority_stops(minority: list[WatchedNode], timeout: float) -> None:
    for node in minority:
        assert node.node.wait_stopped(timeout), f"minority {node} is still running: split brain"


class TcpProxy:
    """Forwards each connection to 127.0.0.1:``address.port`` on to ``target``; ``close()`` cuts
    them all (a link that drops while both ends live on). A thread pair per connection: a test
    tool."""

    def __init__(self, target: Address) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = Address("127.0.0.1", self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection((self._target.host, self._target.port))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._sockets += [downstream, upstream]
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
