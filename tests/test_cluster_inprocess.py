"""Several members in one process over real loopback TCP.

Join, partition, leave, restart, client.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import pytest
from cluster_helpers import (
    STEP_TIMEOUT,
    ClusterHarness,
    WatchedNode,
    all_up,
    assert_minority_stops,
    check_event_invariants,
    events_about,
    fetch_state,
    free_port,
    heal,
    partition,
    saw,
)

import actors
from messages.address import Address
from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberUnreachable,
    MemberUp,
)
from messages.member import Member, MemberStatus


def assert_same_members(nodes: list[WatchedNode], uuids: set[str]) -> None:
    for node in nodes:
        assert node.member_uuids() == uuids, f"{node} disagrees on the members"


@pytest.mark.timeout(30)
def test_five_members_join_through_one_seed_and_agree(harness: ClusterHarness) -> None:
    nodes = harness.start_many(5)
    uuids = {node.uuid for node in nodes}
    assert len(uuids) == 5

    harness.wait_all_up(uuids)

    assert_same_members(nodes, uuids)
    for node in nodes:
        assert {e.member.uuid for e in node.events() if isinstance(e, MemberUp)} == uuids
    harness.check_invariants()


@pytest.mark.timeout(40)
def test_eight_concurrent_joins_through_one_seed(harness: ClusterHarness) -> None:
    seed = harness.start()
    joiners = harness.start_many(8, concurrently=True)
    uuids = {seed.uuid, *(node.uuid for node in joiners)}
    assert len(uuids) == 9

    harness.wait_all_up(uuids)

    assert_same_members(harness.nodes, uuids)
    harness.check_invariants()


@pytest.mark.timeout(45)
def test_partition_downs_the_minority_and_never_resurrects_it(harness: ClusterHarness) -> None:
    harness.start_many(5)
    harness.wait_all_up()
    harness.wait_converged()
    majority, minority = partition(harness)
    minority_uuids = {node.uuid for node in minority}

    assert_minority_stops(minority, STEP_TIMEOUT)
    for uuid in minority_uuids:
        harness.wait_all(saw(MemberRemoved, uuid), majority, what="minority member removed")
    assert all(node.is_running for node in majority)

    heal(majority)
    newcomer = harness.start(seeds=[majority[0].address])
    survivors = [*majority, newcomer]
    survivor_uuids = {node.uuid for node in survivors}
    harness.wait_all_up(survivor_uuids, survivors)

    assert_same_members(survivors, survivor_uuids)
    for node in majority:
        for uuid in minority_uuids:
            kinds = [type(e) for e in events_about(node.events(), uuid)]
            assert kinds[-2:] == [MemberDowned, MemberRemoved], f"{node} saw {kinds}"
    assert not any(events_about(newcomer.events(), uuid) for uuid in minority_uuids)
    harness.check_invariants()  # nothing after MemberRemoved, replay == final state
    for node in survivors:
        state = fetch_state(node.address, harness.cluster_name)
        assert minority_uuids.isdisjoint(m.uuid for m in state.members)
        assert minority_uuids <= {uuid for uuid, _ in state.tombstones}


@pytest.mark.timeout(30)
def test_partition_right_after_the_joins_still_downs_only_the_minority(
    harness: ClusterHarness,
) -> None:
    harness.start_many(5)
    harness.wait_all_up()  # every member knows all five as UP, convergence may be under way
    majority, minority = partition(harness)

    assert_minority_stops(minority, 10.0)
    for node in minority:
        harness.wait_all(saw(MemberRemoved, node.uuid), majority, what="minority member removed")
    assert all(node.is_running for node in majority)
    harness.check_invariants()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("leaver_is_leader", [True, False], ids=["leader", "non-leader"])
def test_graceful_leave_is_seen_everywhere_and_never_unreachable(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture, leaver_is_leader: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="actors.membership")
    harness.start_many(4)
    harness.wait_all_up()
    by_address = sorted(harness.nodes, key=lambda node: node.address)
    leaver = by_address[0] if leaver_is_leader else by_address[2]  # the leader: lowest address
    others = [node for node in harness.nodes if node is not leaver]

    assert leaver.node.leave(timeout=STEP_TIMEOUT) is True
    assert not leaver.is_running

    harness.wait_all(saw(MemberRemoved, leaver.uuid), others, what="leaver removed")
    for node in others:
        kinds = [type(e) for e in events_about(node.events(), leaver.uuid)]
        if kinds[0] is MemberJoined:  # this node saw the leaver join
            kinds.pop(0)
        assert kinds == [MemberUp, MemberLeft, MemberExited, MemberRemoved], f"{node} saw {kinds}"
        assert leaver.uuid not in node.member_uuids()
    remaining = {node.uuid for node in others}
    assert_same_members(others, remaining)
    assert broken_rules(caplog) == []  # e.g. the leaver's last gossip, of a state without it
    harness.check_invariants()


def broken_rules(caplog: pytest.LogCaptureFixture) -> list[object]:
    """The rules of the messages members dropped as breaking one (their ``Dropped`` warnings)."""
    return [
        record.args[3]
        for record in caplog.records
        if record.name == "actors.membership"
        and record.msg.startswith("Dropped")
        and isinstance(record.args, tuple)
    ]


@pytest.mark.timeout(30)
def test_restart_at_the_same_address_replaces_the_old_incarnation_at_once() -> None:
    down_after = 30.0  # the replacement must not wait for downing
    with ClusterHarness(down_after=down_after) as harness:
        harness.start_many(3)
        harness.wait_all_up()
        old = harness.nodes[2]
        others = harness.nodes[:2]
        started = time.monotonic()
        old.node.stop()

        new = harness.start(port=old.address.port)
        assert new.address == old.address
        assert new.uuid != old.uuid
        harness.wait_all(saw(MemberRemoved, old.uuid), others, what="old incarnation removed")
        harness.wait_all_up({new.uuid}, [*others, new])
        assert time.monotonic() - started < down_after / 2

        for node in others:
            kinds = [type(e) for e in events_about(node.events(), old.uuid)]
            assert MemberUnreachable not in kinds[kinds.index(MemberRemoved) :]
            assert kinds[-2:] == [MemberDowned, MemberRemoved], f"{node} saw {kinds}"
        assert_same_members([*others, new], {others[0].uuid, others[1].uuid, new.uuid})
        harness.check_invariants()


@pytest.mark.timeout(30)
def test_cluster_name_mismatch_is_refused_and_the_seed_keeps_serving(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.transport")
    seed = harness.start()
    wrong_name = f"{harness.cluster_name}-other"

    with pytest.raises(actors.JoinRefusedError) as refused:
        actors.start_member(
            cluster_name=wrong_name, port=0, seeds=[seed.address], settings=harness.settings
        )

    message = str(refused.value)
    assert repr(harness.cluster_name) in message
    assert repr(wrong_name) in message
    refusals = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("actors.transport.") and record.levelno >= logging.WARNING
    ]
    assert any(
        "cluster name mismatch" in text and harness.cluster_name in text and wrong_name in text
        for text in refusals
    ), refusals

    member = harness.start()
    harness.wait_all_up({seed.uuid, member.uuid})
    harness.check_invariants()


@pytest.mark.timeout(20)
def test_join_times_out_when_no_seed_listens() -> None:
    port = free_port()
    join_timeout = 1.0
    started = time.monotonic()
    with pytest.raises(actors.JoinTimeoutError) as timed_out:
        actors.start_member(
            cluster_name="lonely",
            port=0,
            seeds=[f"127.0.0.1:{port}"],
            join_timeout=join_timeout,
            gossip_interval=0.2,
            heartbeat_interval=0.2,
        )
    elapsed = time.monotonic() - started
    assert join_timeout <= elapsed < join_timeout + 3.0
    message = str(timed_out.value)
    assert "no seed answered within 1 s" in message
    assert f"127.0.0.1:{port}" in message


class _Retried(logging.Handler):
    """Sets ``seen`` at the first record of a join attempt made after ``join_timeout``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING and "trying on" in record.getMessage():
            self.seen.set()


@pytest.mark.timeout(30)
def test_a_join_retried_forever_outlasts_join_timeout_and_joins_a_seed_that_comes_late() -> None:
    port = free_port()
    timings = {"cluster_name": "late", "gossip_interval": 0.2, "heartbeat_interval": 0.2}
    retried = _Retried()
    logger = logging.getLogger("actors.membership")
    logger.addHandler(retried)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            joining = pool.submit(
                actors.start_member,
                port=0,
                seeds=[f"127.0.0.1:{port}"],
                join_timeout=0.5,
                join_retry_forever=True,
                **timings,
            )
            assert retried.seen.wait(STEP_TIMEOUT), "no attempt after join_timeout was logged"
            assert not joining.done()  # still trying, past its join_timeout
        finally:
            logger.removeHandler(retried)
        seed = actors.start_member(port=port, **timings)
        try:
            node = joining.result(STEP_TIMEOUT)
            try:
                assert node.cluster.get_member_by_uuid(seed.uuid) is not None
            finally:
                node.stop()
        finally:
            seed.stop()


@pytest.mark.timeout(40)
def test_client_fails_over_and_fires_only_real_changes(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="actors.client")
    a, b, _ = harness.start_many(3)
    harness.wait_all_up()
    client = harness.start_client([a.address, b.address])
    client.wait(all_up(node.uuid for node in harness.nodes), what="client sees all members")
    assert client.member_uuids() == {node.uuid for node in harness.nodes}

    connected_to = connected_member(caplog)
    lost = next(node for node in harness.nodes if node.address == connected_to)
    survivors = [node for node in harness.nodes if node is not lost]
    lost.node.stop()

    client.wait(saw(MemberRemoved, lost.uuid), what="client sees the lost member removed")
    harness.wait_all(saw(MemberRemoved, lost.uuid), survivors)
    assert connected_member(caplog) != connected_to, "the client did not reconnect elsewhere"

    events = client.events()
    assert len(events_about(events, lost.uuid, MemberRemoved)) == 1
    for node in harness.nodes:
        assert len(events_about(events, node.uuid, MemberUp)) == 1, f"MemberUp twice for {node}"
    survivor_uuids = {node.uuid for node in survivors}
    assert client.member_uuids() == survivor_uuids
    assert_same_members(survivors, survivor_uuids)
    for node in harness.nodes:
        assert not events_about(node.events(), client.uuid), f"{node} saw the client as a member"
    harness.check_invariants()


def connected_member(caplog: pytest.LogCaptureFixture) -> Address:
    """The member the client dialled last (from its ``Client connecting to`` debug log)."""
    dials = [
        record.args[0]
        for record in caplog.records
        if record.name == "actors.client"
        and record.msg.startswith("Client connecting to")
        and isinstance(record.args, tuple)
    ]
    assert dials, "no client dial was logged"
    address = dials[-1]
    assert isinstance(address, Address)
    return address


def test_the_event_invariant_checker_catches_each_violation() -> None:
    member = Member.create("127.0.0.1:7001").with_status(MemberStatus.UP, up_number=1)
    other = Member.create("127.0.0.1:7002").with_status(MemberStatus.UP, up_number=2)
    removed = member.with_status(MemberStatus.REMOVED)
    up, gone = MemberUp(1, member), MemberRemoved(2, removed)
    final = CurrentClusterState(version=2, members=(other,))
    check_event_invariants([up, MemberUp(1, other), gone], final)  # a valid history

    bad_histories: dict[str, list[ClusterEvent]] = {
        "duplicate": [up, up],
        "lifecycle goes backwards": [gone, up],
        "arrives after MemberRemoved": [up, gone, MemberUnreachable(3, member)],
        "was not unreachable": [up, MemberReachable(2, member)],
        "already unreachable": [up, MemberUnreachable(2, member), MemberUnreachable(3, member)],
        "version 1 after version 2": [MemberUp(2, member), MemberLeft(1, member)],
    }
    for problem, events in bad_histories.items():
        with pytest.raises(AssertionError, match=problem):
            check_event_invariants(events)
    with pytest.raises(AssertionError, match="differ from the final state"):
        check_event_invariants([up], final)
    with pytest.raises(AssertionError, match="replayed leader"):
        check_event_invariants([MemberUp(1, other), LeaderChanged(1, other.address)], final)
