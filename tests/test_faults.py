"""The faults a membership system exists for, each also in the version that heals halfway.

In-process members over real loopback TCP. A partition is ``BlockPeers`` at each side's transport
(``tests/support/faulty_transport.py``: frames are lost, links stall until re-dialled); a frozen
process is a membership actor blocked in a message (as a long GC pause or SIGSTOP would block it,
while its sockets stay open).
"""

from __future__ import annotations

import logging
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pykka
import pytest
from cluster_helpers import (
    STEP_TIMEOUT,
    ClusterHarness,
    EventPredicate,
    RawLink,
    Received,
    WatchedNode,
    assert_minority_stops,
    fetch_state,
    free_port,
    heal,
    partition,
    poll_until,
    saw,
)
from cluster_helpers import Sink as RecordingSink
from hypothesis import given, settings
from hypothesis import strategies as st
from state_strategies import (
    ADDRESS_POOL,
    BROKEN_STATES,
    UUID_POOL,
    any_states,
    clocks,
    counters,
    members,
    plausible_states,
    uuid_sets,
    uuids,
)
from support.actor_hook import ActorThreadHook
from support.processes import Child

from actors.listeners.callbacks import CallbackRunner
from actors.listeners.registry import ListenerRegistryActor
from actors.membership import MembershipActor
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.events import (
    ClusterEvent,
    MemberDowned,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
)
from messages.local.commands import GetClusterState
from messages.member import Member
from messages.membership.effects import (
    GossipTick,
    HeartbeatTick,
    Inbound,
    JoinCluster,
    Joined,
    Termination,
    TerminationKind,
)
from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Join,
    RemovalNotice,
    Watch,
    Welcome,
)
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.handshake import Hello, HelloAccepted, Identity, Role


def unreachable_now(events: Iterable[ClusterEvent]) -> set[str]:
    """The members an event history leaves unreachable."""
    current: set[str] = set()
    for event in events:
        if isinstance(event, MemberUnreachable):
            current.add(event.member.uuid)
        elif isinstance(event, MemberReachable | MemberRemoved):
            current.discard(event.member.uuid)
    return current


def sees_unreachable(uuids: set[str]) -> EventPredicate:
    return lambda events: uuids <= unreachable_now(events)


def no_downs(nodes: Iterable[WatchedNode]) -> None:
    for node in nodes:
        downed = [e for e in node.events() if isinstance(e, MemberDowned)]
        assert not downed, f"{node} saw {downed}"


def distinct_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def freeze(node: WatchedNode) -> threading.Event:
    """Block the node's membership actor, and so its I/O thread, which runs it, until the
    returned event is set (a paused process: no heartbeat answers, no gossip, while its sockets
    stay open).

    The actor runs no function of a caller's in any message it handles, so the test makes it wait
    by a test-only message that runs one in its thread (``tests/support/actor_hook.py``).
    """
    thaw = threading.Event()
    node.node.membership.tell(ActorThreadHook(lambda: thaw.wait(STEP_TIMEOUT)))
    return thaw


# -- partitions -------------------------------------------------------------------------------


def deliver_late_gossip(
    cluster_name: str, sides: tuple[list[WatchedNode], list[WatchedNode]]
) -> None:
    """What TCP retransmission delivers when a partition heals: gossip each side sent while cut
    off, its reachability rows still marking the other side, arrives at the other side."""
    for senders, receivers in (sides, sides[::-1]):
        sender = senders[0]
        state = fetch_state(sender.address, cluster_name)
        for receiver in receivers:
            with RawLink(receiver.address) as link:  # on a link that says it is the sender's
                link.hello(cluster_name, Role.MEMBER, sender.uuid)  # no address: no route
                link.send(Gossip(from_uuid=sender.uuid, to_uuid=receiver.uuid, state=state))


@pytest.mark.timeout(60)
def test_a_partition_healed_before_down_after_downs_nobody() -> None:
    down_after = 6.0
    with ClusterHarness(down_after=down_after) as harness:
        harness.start_many(5)
        harness.wait_all_up()
        harness.wait_converged()
        majority, minority = partition(harness)
        for side, other in ((majority, minority), (minority, majority)):
            harness.wait_all(sees_unreachable({n.uuid for n in other}), side, what="cut seen")

        threading.Event().wait(down_after / 2)  # the fault schedule: heal half-way to down_after
        deliver_late_gossip(harness.cluster_name, (majority, minority))
        heal(harness.nodes)

        harness.wait_all(lambda events: not unreachable_now(events), what="all reachable again")
        harness.wait_converged()
        assert all(node.is_running for node in harness.nodes)
        no_downs(harness.nodes)
        harness.check_invariants()


@pytest.mark.timeout(60)
def test_a_partition_healed_after_the_majority_downed_the_minority_stops_only_the_minority() -> (
    None
):
    """The minority would wait far longer than the majority (its timer started later, say): the
    heal reaches it before its own decision, and what tells it is the majority's answer."""
    ports = distinct_ports(5)
    with ClusterHarness(down_after=2.0) as harness:
        for port in ports[:3]:
            harness.start(port=port)
        for port in ports[3:]:
            harness.start(port=port, down_after=120.0)
        harness.wait_all_up()
        harness.wait_converged()
        majority, minority = partition(harness)
        for node in minority:
            harness.wait_all(saw(MemberDowned, node.uuid), majority, what="minority downed")
        assert all(node.is_running for node in minority)

        heal(harness.nodes)

        assert_minority_stops(minority, STEP_TIMEOUT)
        for node in minority:
            termination = node.node.termination
            assert termination is not None
            assert termination.kind is TerminationKind.REMOVED, termination
            harness.wait_all(saw(MemberRemoved, node.uuid), majority, what="minority removed")
        assert all(node.is_running for node in majority)
        for node in majority:
            assert node.member_uuids() == {n.uuid for n in majority}
            assert not any(saw(MemberDowned, n.uuid)(node.events()) for n in majority)
        harness.check_invariants()


# -- a paused process -----------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("frozen_is_leader", [True, False], ids=["leader", "non-leader"])
def test_a_member_frozen_past_its_removal_stops_when_it_resumes(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture, frozen_is_leader: bool
) -> None:
    caplog.set_level(logging.INFO, logger="actors.membership")
    harness.start_many(4)
    harness.wait_all_up()
    harness.wait_converged()
    by_address = sorted(harness.nodes, key=lambda node: node.address)
    frozen = by_address[0] if frozen_is_leader else by_address[2]
    others = [node for node in harness.nodes if node is not frozen]

    thaw = freeze(frozen)
    try:
        harness.wait_all(saw(MemberRemoved, frozen.uuid), others, what="frozen member removed")
    finally:
        thaw.set()

    assert frozen.node.wait_stopped(STEP_TIMEOUT), "the removed member lives on as a zombie"
    assert frozen.node.termination == Termination(
        TerminationKind.REMOVED,
        f"a member answered: member {frozen.uuid} was removed from the cluster",
    )
    assert f"{frozen.address} is out of the cluster (removed)" in caplog.text
    harness.wait_converged(others)
    for node in others:
        assert node.member_uuids() == {n.uuid for n in others}
    harness.check_invariants()  # at the others: nothing about the frozen member after its removal


@pytest.mark.timeout(60)
def test_a_member_frozen_for_less_than_down_after_is_reachable_again() -> None:
    with ClusterHarness(down_after=5.0) as harness:
        harness.start_many(4)
        harness.wait_all_up()
        harness.wait_converged()
        frozen = harness.nodes[2]
        others = [node for node in harness.nodes if node is not frozen]

        thaw = freeze(frozen)
        try:
            harness.wait_all(saw(MemberUnreachable, frozen.uuid), others, what="frozen unreachable")
        finally:
            thaw.set()

        harness.wait_all(saw(MemberReachable, frozen.uuid), others, what="reachable again")
        harness.wait_converged()
        assert all(node.is_running for node in harness.nodes)
        no_downs(harness.nodes)
        harness.check_invariants()


@pytest.mark.timeout(60)
def test_heartbeats_of_members_are_answered_by_the_io_thread_behind_an_actor_backlog(
    harness: ClusterHarness,
) -> None:
    """An actor backlog delays a heartbeat's answer by a pass of the I/O thread's actor turns
    only, not by the backlog (the I/O thread answers it as it reads it); a heartbeat it does not
    answer (here one in another's name than its link's) waits for the step, which drops it."""
    harness.start_many(2)
    harness.wait_all_up()
    seed, busy = harness.nodes
    harness.wait_converged()
    backlog = 200  # 10 ms of work each for the membership actor: 2 s in all
    handled: set[int] = set()

    def slow_step(number: int) -> ActorThreadHook:
        def work() -> None:  # the hook runs at each type test of a message: work once
            if number not in handled:
                handled.add(number)
                time.sleep(0.01)

        return ActorThreadHook(work)

    for number in range(backlog):
        busy.node.membership.tell(slow_step(number))
    with RawLink(busy.address) as link:
        link.hello(harness.cluster_name, Role.MEMBER, seed.uuid)  # no address: no route
        link.send(Heartbeat(from_uuid="stranger", to_uuid=busy.uuid, sequence=1))
        link.send(Heartbeat(from_uuid=seed.uuid, to_uuid=busy.uuid, sequence=2))
        # Frames of one link are read in order: an answer to the first would come first.
        assert link.receive(HeartbeatAck) == HeartbeatAck(from_uuid=busy.uuid, sequence=2)
        assert len(handled) < backlog / 2  # answered long before the backlog was worked off
        link.send(Watch())
        assert isinstance(link.receive(), ClientUpdate)  # the step dropped the first


# -- poisoned gossip --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_inconsistent_states_from_the_wire_are_dropped_naming_sender_and_rule(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="actors.membership")
    target, peer, third = harness.start_many(3)
    harness.wait_all_up()
    harness.wait_converged()
    honest = fetch_state(target.address, harness.cluster_name)

    with RawLink(target.address) as link:
        link.hello(harness.cluster_name, role=Role.MEMBER)
        sender = f"127.0.0.1:{link.sock.getsockname()[1]}"
        for rule, breaks in BROKEN_STATES.items():
            link.send(Gossip(from_uuid=peer.uuid, to_uuid=target.uuid, state=breaks(honest)))
            expected = f"Dropped Gossip from {sender} (member {peer.uuid}): it breaks rule {rule!r}"
            poll_until(lambda: expected in caplog.text, f"the log line for {rule}")  # noqa: B023
        link.send(Welcome(state=honest))  # not joining: ignored, and not a crash either

    newcomer = harness.start()
    harness.wait_all_up()
    assert all(node.is_running for node in harness.nodes)
    assert {m.uuid for m in fetch_state(target.address, harness.cluster_name).members} == {
        target.uuid,
        peer.uuid,
        third.uuid,
        newcomer.uuid,
    }
    assert "kept serving after an error" not in caplog.text
    no_downs(harness.nodes)
    harness.check_invariants()


class Sink(pykka.ThreadingActor):
    """Stands in for the transport and for links: takes every message and drops it."""

    def on_receive(self, message: Any) -> Any:
        return None


class Failures(logging.Handler):
    """Collects the records logged with a traceback (the membership actor's guard logs those)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.records.append(record)


SELF = UUID_POOL[0]
any_or_plausible_states = st.one_of(any_states(), plausible_states())
wire_inputs = st.one_of(
    st.builds(Gossip, from_uuid=uuids, to_uuid=st.just(SELF), state=any_or_plausible_states),
    st.builds(Gossip, from_uuid=uuids, to_uuid=uuids, state=any_or_plausible_states),
    st.builds(Welcome, state=any_or_plausible_states),
    st.builds(GossipStatus, from_uuid=uuids, to_uuid=uuids, version=clocks, seen=uuid_sets),
    st.builds(Heartbeat, from_uuid=uuids, to_uuid=uuids, sequence=counters),
    st.builds(HeartbeatAck, from_uuid=uuids, sequence=counters),
    st.builds(Join, member=members),
    st.builds(RemovalNotice, to_uuid=st.sampled_from(UUID_POOL[1:]), reason=st.just("test")),
)


@pytest.mark.timeout(120)
def test_random_wire_input_never_stops_a_live_membership_actor() -> None:
    """Random decodable states and messages, valid or not, fed to a joined membership actor with
    its ticks: it never crashes and never hits its guard (an error there is a bug)."""
    failures = Failures()
    logging.getLogger("actors.membership").addHandler(failures)
    sink = Sink.start()
    registry = ListenerRegistryActor.start(CallbackRunner.start())
    scheduler = IoLoop(WIRE_CODEC, Settings(cluster_name="fuzz"), name="fuzz-io")
    try:

        @settings(max_examples=150, deadline=None)
        @given(st.lists(wire_inputs, min_size=1, max_size=6), st.randoms(use_true_random=False))
        def feed(messages: list[Any], rng: random.Random) -> None:
            reports = Received()
            supervisor = RecordingSink.start(reports)
            member = Member.create(ADDRESS_POOL[0], member_uuid=SELF)
            settings_ = Settings(cluster_name="fuzz", gossip_interval=30, heartbeat_interval=30)
            actor = MembershipActor.start(
                member, registry, settings_, scheduler, transport=sink, supervisor=supervisor
            )
            try:
                actor.tell(JoinCluster(seeds=()))
                reports.wait_for(lambda news: Joined(formed=True) in news)
                for message in messages:
                    claimed = Identity(getattr(message, "from_uuid", "fuzzer"), Role.MEMBER)
                    actor.tell(Inbound(message, 1, "fuzzer", claimed))
                    actor.tell(rng.choice([GossipTick(), HeartbeatTick()]))
                actor.ask(GetClusterState(), timeout=STEP_TIMEOUT)
                assert actor.is_alive()
                assert not failures.records, failures.records[0].getMessage()
                # A valid state may down or remove it: not a crash.
                failed = [n for n in reports.messages if isinstance(n, Termination)]
                assert all(n.kind is not TerminationKind.FAILED for n in failed), failed
            finally:
                actor.stop()
                supervisor.stop()

        feed()
    finally:
        logging.getLogger("actors.membership").removeHandler(failures)
        scheduler.stop()
        sink.stop()
        registry.stop()


# -- connections that never say Hello, and running out of file descriptors ----------------------


def closed_by_peer(sock: socket.socket, deadline: float) -> bool:
    """Read until the peer closes (True) or ``deadline`` passes (False)."""
    try:
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.timeout(60)
def test_connections_that_never_say_hello_are_closed_and_cost_nothing_after(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="actors")
    node = harness.start(handshake_timeout=1.0)
    harness.wait_all_up()
    baseline = threading.active_count()

    silent = [socket.create_connection((node.address.host, node.address.port)) for _ in range(100)]
    try:
        deadline = time.monotonic() + STEP_TIMEOUT
        assert all(closed_by_peer(sock, deadline) for sock in silent)
    finally:
        for sock in silent:
            sock.close()

    poll_until(lambda: threading.active_count() <= baseline, "threads back to the baseline")
    assert "no Hello from 127.0.0.1:" in caplog.text
    assert "are waiting for their Hello, the limit: accepting no more" in caplog.text
    assert fetch_state(node.address, harness.cluster_name).member(node.uuid) is not None


def silent_connection(address: Address, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((address.host, address.port), source_address=(source, 0))


@pytest.mark.timeout(60)
def test_connections_over_the_pending_handshake_limit_wait_and_are_not_refused(
    harness: ClusterHarness,
) -> None:
    node = harness.start(handshake_timeout=30.0, max_pending_handshakes=4)
    harness.wait_all_up()
    silent = [silent_connection(node.address) for _ in range(4)]
    try:
        # the fifth waits in the listen backlog; its Hello is answered once a slot frees
        with RawLink(node.address, timeout=STEP_TIMEOUT) as late:
            late.send(
                Hello(
                    cluster_name=harness.cluster_name,
                    protocol_version=PROTOCOL_VERSION,
                    uuid=str(uuid.uuid4()),
                    role=Role.CLIENT,
                )
            )
            silent.pop().close()
            assert isinstance(late.receive(), HelloAccepted)
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.timeout(60)
def test_a_source_over_its_share_of_pending_handshakes_is_refused_only_while_others_wait(
    harness: ClusterHarness,
) -> None:
    node = harness.start(
        handshake_timeout=30.0, max_pending_handshakes=16, max_pending_handshakes_per_source=2
    )
    harness.wait_all_up()
    alone = [silent_connection(node.address) for _ in range(4)]  # twice its share: alone, kept
    other = silent_connection(node.address, source="127.0.0.2")
    over = silent_connection(node.address)  # over its share while 127.0.0.2 waits: closed
    try:
        assert closed_by_peer(over, time.monotonic() + STEP_TIMEOUT)
        assert not any(closed_by_peer(sock, time.monotonic() + 0.2) for sock in [*alone, other])
    finally:
        for sock in [*alone, other, over]:
            sock.close()


LOW_FD_MEMBER = """
import logging, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
import actors
node = actors.start_member(cluster_name=sys.argv[1], port=0, handshake_timeout=2.0)
print(node.address.port, flush=True)
sys.stdin.read()  # until the test closes our stdin
node.stop()
"""


@pytest.mark.timeout(60)
def test_the_acceptor_keeps_accepting_after_running_out_of_file_descriptors() -> None:
    cluster = "low-fd"
    member = Child(  # below the handshake limits
        [sys.executable, "-c", LOW_FD_MEMBER, cluster, "14"], "member", stdin=subprocess.PIPE
    )
    with member:
        stdout, log = member.stdout, member.stderr
        address = Address("127.0.0.1", int(stdout.line(stdout.wait_for(r"^\d+$"))))

        flood = [socket.create_connection((address.host, address.port)) for _ in range(60)]
        try:
            log.wait_for("Cannot accept connections: Too many open files; retrying")
        finally:
            for sock in flood:
                sock.close()

        state = fetch_state(address, cluster, timeout=STEP_TIMEOUT)
        assert len(state.members) == 1
        assert member.process.poll() is None
        assert "Traceback" not in "\n".join(log.snapshot())
        member.close_stdin()  # it stops once its stdin ends
        member.wait(STEP_TIMEOUT)
