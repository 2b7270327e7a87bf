"""Clients follow the member they are connected to, as a Hazelcast client follows its cluster."""

from __future__ import annotations

import socket
import time

import pytest
from cluster_helpers import (
    STEP_TIMEOUT,
    ClusterHarness,
    Received,
    TcpProxy,
    all_up,
    free_port,
    saw,
)

import actors
from actors.listeners.recorder import EventRecorder, wait_until
from messages.events import (
    ClientConnected,
    ClientDisconnected,
    ClusterEvent,
    LifecycleState,
    MemberExited,
    MemberLeft,
    MemberRemoved,
    MemberUp,
)
from messages.local.commands import Subscribe
from messages.member import Member


def uuids(members: object) -> list[str]:
    assert isinstance(members, list)
    return [member.uuid for member in members if isinstance(member, Member)]


@pytest.mark.timeout(30)
def test_a_client_sees_the_lone_member_that_leaves_removed() -> None:
    with ClusterHarness() as harness:
        member = harness.start()
        client = harness.start_client([member.address])
        client.wait(all_up({member.uuid}))
        removed = Received()
        client.owner.cluster.add_listener(member_removed=removed)

        assert member.node.leave(timeout=STEP_TIMEOUT)

        assert uuids(removed.wait_count(1)) == [member.uuid]
        assert client.owner.cluster.get_members() == []
        events = client.wait(saw(MemberRemoved, member.uuid))
        kinds = [type(e) for e in events if type(e) in (MemberLeft, MemberExited, MemberRemoved)]
        assert kinds == [MemberLeft, MemberExited, MemberRemoved]
        client.wait(lambda events: isinstance(events[-1], ClientDisconnected), what="disconnected")
        harness.check_invariants()


@pytest.mark.timeout(60)
def test_a_client_that_outlives_a_full_cluster_restart_follows_the_new_cluster() -> None:
    with ClusterHarness() as harness:
        old = harness.start_many(2)
        client = harness.start_client([node.address for node in old])
        client.wait(all_up(node.uuid for node in old))
        added, removed = Received(), Received()
        client.owner.cluster.add_listener(member_added=added, member_removed=removed)

        for node in old:
            node.node.stop()
        client.wait(lambda events: isinstance(events[-1], ClientDisconnected), what="disconnected")
        first = harness.start(seeds=[], port=old[0].address.port)
        second = harness.start(seeds=[first.address], port=old[1].address.port)

        new = {first.uuid, second.uuid}
        client.wait(all_up(new), what="the new cluster's members up at the client")
        assert sorted(uuids(removed.wait_count(2))) == sorted(node.uuid for node in old)
        assert set(uuids(added.wait_count(2))) == new
        assert {m.uuid for m in client.owner.cluster.get_members()} == new
        for node in (first, second):
            member = client.owner.cluster.get_member_by_address(node.address)
            assert member is not None
            assert member.uuid == node.uuid
        assert len(removed.messages) == 2
        harness.check_invariants()


@pytest.mark.timeout(60)
def test_a_client_that_loses_its_link_fires_nothing_when_nothing_changed() -> None:
    with ClusterHarness() as harness:
        nodes = harness.start_many(3)
        harness.wait_all_up()
        harness.wait_converged()
        with TcpProxy(nodes[0].address) as proxy:
            lifecycle = Received()
            client = harness.start_client([proxy.address], lifecycle_listeners=[lifecycle])
            client.wait(all_up(node.uuid for node in nodes))
            assert lifecycle.messages == [LifecycleState.STARTING, LifecycleState.CONNECTED]
            assert client.owner.connected
            before = len(client.events())

            proxy.close()  # the link drops; every member lives on, nothing changes

        reconnected = [LifecycleState.DISCONNECTED, LifecycleState.CONNECTED]
        assert lifecycle.wait_count(4)[2:] == reconnected
        events: list[ClusterEvent] = []
        client.wait(lambda all_events: isinstance(all_events[-1], ClientConnected))
        events = list(client.events()[before:])
        assert [type(event) for event in events] == [ClientDisconnected, ClientConnected], events
        assert events[0].member == proxy.address
        assert events[1].member in {node.address for node in nodes}
        assert client.owner.connected
        assert {m.uuid for m in client.owner.cluster.get_members()} == {n.uuid for n in nodes}
        harness.check_invariants()


def test_a_client_that_reaches_no_member_fails_in_time_and_says_why() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TimeoutError) as timed_out:
        actors.start_client(cluster_name="nobody", members=[f"127.0.0.1:{port}"], join_timeout=1.0)
    assert time.monotonic() - started < 5.0
    message = str(timed_out.value)
    assert f"127.0.0.1:{port}" in message
    assert "ECONNREFUSED" in message


def test_a_member_that_never_answers_the_watch_is_given_up_after_the_handshake_timeout() -> None:
    """A listener that accepts and says nothing: the client closes each link after
    ``handshake_timeout``, tries again, and fails at ``join_timeout`` saying why."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(TimeoutError) as timed_out:
            actors.start_client(
                cluster_name="mute",
                members=[f"127.0.0.1:{port}"],
                join_timeout=2.0,
                handshake_timeout=0.3,
            )
        assert time.monotonic() - started < 6.0
        assert "no answer to Watch within 0.3 s" in str(timed_out.value)


def test_listener_actors_subscribe_to_the_connection_and_get_the_current_one_first() -> None:
    with ClusterHarness() as harness:
        member = harness.start()
        client = harness.start_client([member.address])
        recorder = EventRecorder.start()
        client.owner.listeners.ask(
            Subscribe(recorder, events=(ClientConnected, ClientDisconnected)), timeout=STEP_TIMEOUT
        )
        try:
            (connected,) = wait_until(recorder, lambda events: len(events) == 1, STEP_TIMEOUT)
            assert isinstance(connected, ClientConnected)
            assert connected.member == member.address
            everything = client.events()  # membership first, then the connection (as Hazelcast)
            assert everything.index(connected) > max(
                i for i, e in enumerate(everything) if isinstance(e, MemberUp)
            )

            member.node.stop()

            events = wait_until(recorder, lambda events: len(events) == 2, STEP_TIMEOUT)
            assert isinstance(events[1], ClientDisconnected)
            assert events[1].member == member.address
            assert not client.owner.connected
        finally:
            recorder.stop()
