"""A one-member cluster through the facade: start, events, leave, stop, and bad arguments."""

from __future__ import annotations

import logging
import socket

import pytest
from support.actor_hook import ActorThreadHook

import actors
from messages import (
    Address,
    GetClusterState,
    GetMembers,
    LeaderChanged,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    MemberStatus,
    MemberUp,
)
from messages.local.commands import GetEvents
from messages.membership.effects import TerminationKind
from messages.settings import Settings

TIMEOUT = 10.0


def test_a_lone_member_forms_a_cluster_and_goes_up() -> None:
    with actors.start_member(cluster_name="solo", port=0, attributes={"zone": "a"}) as node:
        members = node.cluster.get_members()
        assert [m.uuid for m in members] == [node.uuid]
        assert members[0].status is MemberStatus.UP
        assert members[0].up_number == 1
        assert members[0].attributes == {"zone": "a"}
        assert node.cluster.size() == 1
        assert node.cluster.get_member_by_address(str(node.address)) == members[0]
        assert list(node.listeners.ask(GetMembers(), timeout=TIMEOUT)) == members
        state = node.membership.ask(GetClusterState(), timeout=TIMEOUT)
        assert state.leader == node.address

        recorder = actors.record_events(node.listeners)
        events = recorder.ask(GetEvents(), timeout=TIMEOUT)
        assert [type(e) for e in events] == [MemberUp, LeaderChanged]
        recorder.stop()
    assert not node.is_running


def test_only_the_listener_registry_answers_get_members() -> None:
    with actors.start_member(cluster_name="solo", port=0) as node:
        (member,) = node.listeners.ask(GetMembers(), timeout=TIMEOUT)
        assert member.uuid == node.uuid
        for other in (node.membership, node.load_balancer):
            assert other.ask(GetMembers(), timeout=TIMEOUT) is None  # ignored, as any stray
            assert other.is_alive()


def test_leave_goes_through_leaving_exiting_removed_in_order() -> None:
    node = actors.start_member(cluster_name="solo", port=0)
    try:
        recorder = actors.record_events(node.listeners)
        assert node.leave(timeout=TIMEOUT)
        events = actors.wait_until(
            recorder, lambda es: any(isinstance(e, MemberRemoved) for e in es), TIMEOUT
        )
        kinds = [type(e) for e in events]
        assert kinds[:2] == [MemberUp, LeaderChanged]  # replayed on subscription
        assert kinds.index(MemberLeft) < kinds.index(MemberExited) < kinds.index(MemberRemoved)
        assert MemberJoined not in kinds  # it was already up when the recorder subscribed
        recorder.stop()
    finally:
        node.stop()
    assert not node.is_running


def test_leave_twice_and_stop_twice_are_harmless() -> None:
    node = actors.start_member(cluster_name="solo", port=0)
    assert node.leave(timeout=TIMEOUT)
    assert node.leave(timeout=TIMEOUT) is False
    node.stop()
    node.stop()


def test_bad_settings_fail_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="gossip_interval must be positive"):
        actors.start_member(cluster_name="solo", port=0, gossip_interval=0)
    with pytest.raises(ValueError, match="cluster_name"):
        actors.start_member(cluster_name="", port=0)
    with pytest.raises(TypeError, match="'no_such_setting'"):
        actors.start_member(cluster_name="solo", port=0, no_such_setting=1)
    with pytest.raises(ValueError, match="Malformed address"):
        actors.start_member(cluster_name="solo", port=0, seeds=["127.0.0.1:notaport"])


def test_settings_come_whole_with_overrides_and_the_cluster_name_on_top() -> None:
    settings = Settings.fast_test(cluster_name="from-settings", down_after=7.0)
    with actors.start_member(port=0, settings=settings, gossip_interval=0.5) as node:
        assert node.settings == settings.replace(gossip_interval=0.5)
    with actors.start_member("named", port=0, settings=settings) as node:
        assert node.settings == settings.replace(cluster_name="named")
    with actors.start_member(port=0) as node:
        assert node.settings == Settings.lan()


def test_an_address_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on {Address('127.0.0.1', port)}"):
            actors.start_member(cluster_name="solo", port=port)


def test_a_crashed_membership_actor_stops_the_node_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = actors.start_member(cluster_name="solo", port=0)
    try:
        with caplog.at_level(logging.INFO, logger="actors.supervisor"):
            node.membership.tell(ActorThreadHook(lambda: 1 / 0))
            assert node.wait_stopped(TIMEOUT)
        assert "membership actor crashed: ZeroDivisionError" in caplog.text
        assert node.termination is not None
        assert node.termination.kind is TerminationKind.FAILED
        assert not node.listeners.is_alive()
        assert node.leave(timeout=TIMEOUT) is False
    finally:
        node.stop()
