"""The member step function, driven by hand: no threads, no sockets, no clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import pytest

from messages.address import Address
from messages.events import MemberJoined, MemberLeft, MemberUp
from messages.member import Member, MemberStatus
from messages.membership.effects import (
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    JoinAttempt,
    JoinCluster,
    Joined,
    JoinFailed,
    Leave,
    MembershipChanged,
    Reply,
    SendTo,
    SetTimer,
    Termination,
    TerminationKind,
)
from messages.membership.node import NodeState
from messages.membership.protocol import (
    Gossip,
    HeartbeatAck,
    Join,
    JoinRefused,
    RemovalNotice,
    Welcome,
)
from messages.membership.step import step
from messages.settings import Settings

T = TypeVar("T")
SETTINGS = Settings.lan()
A = Member.create(Address("10.0.0.1", 5701), member_uuid="a")
B = Member.create(Address("10.0.0.1", 5702), member_uuid="b")


def formed(member: Member = A, now: float = 0.0) -> NodeState:
    node, _ = step(NodeState.create(member, SETTINGS, seed=1), JoinCluster(seeds=()), now)
    return node


def of_type(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [effect for effect in effects if isinstance(effect, kind)]


def inbound(message: object, link: int = 7, peer: str = "peer") -> Inbound:
    return Inbound(message=message, link=link, peer=peer)


def test_a_member_without_seeds_forms_a_cluster_and_is_up_at_once() -> None:
    node, effects = step(NodeState.create(A, SETTINGS, seed=1), JoinCluster(seeds=()), 0.0)

    assert Joined() in effects
    timers = {type(t.message): t.delay for t in of_type(effects, SetTimer)}
    assert timers == {GossipTick: SETTINGS.gossip_interval / 3, HeartbeatTick: 1.0}
    me = node.state.member("a")
    assert me is not None
    assert me.status is MemberStatus.UP
    events = [e for c in of_type(effects, MembershipChanged) for e in c.events]
    assert [type(e) for e in events if type(e) in (MemberJoined, MemberUp)] == [
        MemberJoined,
        MemberUp,
    ]


def test_a_join_through_a_seed_is_welcomed_and_the_joiner_reports_joined() -> None:
    seed = formed()
    joiner, effects = step(NodeState.create(B, SETTINGS, seed=2), JoinCluster((A.address,)), 0.0)
    assert SendTo(A.address, Join(member=B)) in effects
    assert [type(t.message) for t in of_type(effects, SetTimer)] == [JoinAttempt]

    seed, answers = step(seed, inbound(Join(member=B), link=3), 0.1)
    welcome = of_type(answers, Reply)[-1]
    assert welcome.link == 3
    assert isinstance(welcome.message, Welcome)
    assert seed.state.member("b") is not None

    joiner, effects = step(joiner, inbound(welcome.message), 0.2)
    assert Joined() in effects
    assert joiner.joined
    assert joiner.running


def test_a_join_that_nobody_answers_fails_at_the_deadline_and_a_refusal_at_once() -> None:
    node, _ = step(NodeState.create(B, SETTINGS, seed=2), JoinCluster((A.address,)), 0.0)
    _, effects = step(node, JoinAttempt(1), SETTINGS.join_timeout + 0.1)
    failed = of_type(effects, JoinFailed)
    assert len(failed) == 1
    assert not failed[0].refused
    assert "no seed answered" in failed[0].reason

    _, effects = step(node, inbound(JoinRefused(reason="cluster name mismatch")), 0.5)
    assert JoinFailed("cluster name mismatch", refused=True) in effects


def test_the_same_input_gives_the_same_result() -> None:
    node = formed()
    first = step(node, GossipTick(), 1.0)
    second = step(node, GossipTick(), 1.0)
    assert first == second
    assert node == formed()  # the input node is a value: untouched


def test_a_member_that_is_out_does_nothing_more() -> None:
    node = dataclasses.replace(formed(), termination=Termination(TerminationKind.REMOVED, "x"))
    for message in (GossipTick(), HeartbeatTick(), Leave(), inbound(Join(member=B))):
        assert step(node, message, 5.0) == (node, ())


def test_a_removal_notice_ends_the_member() -> None:
    _, effects = step(formed(), inbound(RemovalNotice(to_uuid="a", reason="downed")), 1.0)
    [termination] = of_type(effects, Termination)
    assert termination.kind is TerminationKind.REMOVED


def test_a_lone_leaver_removes_itself_and_stops_as_left() -> None:
    node, effects = step(formed(), Leave(), 1.0)
    events = [type(e) for c in of_type(effects, MembershipChanged) for e in c.events]
    assert MemberLeft in events
    for tick in range(1, 4):
        node, effects = step(node, GossipTick(), 1.0 + tick)
        if of_type(effects, Termination):
            break
    assert node.termination == Termination(TerminationKind.LEFT, "left the cluster")


def test_invalid_gossip_is_dropped_without_a_trace() -> None:
    node = formed()
    bogus = Gossip(from_uuid="stranger", to_uuid="a", state=node.state)  # sender not in state
    assert step(node, inbound(bogus), 1.0) == (dataclasses.replace(node, last_step=1.0), ())


def test_a_member_waking_from_a_pause_discounts_it_and_welcomes_nobody_for_a_while() -> None:
    seed = formed()
    seed, _ = step(seed, inbound(Join(member=B)), 0.1)
    seed = step(seed, HeartbeatTick(), 1.0)[0]  # B is a heartbeat target now
    seed = step(seed, inbound(_ack("b")), 1.01)[0]
    assert "b" in seed.detectors

    woken, effects = step(seed, inbound(Join(member=Member.create("10.0.0.1:5703"))), 60.0)
    assert not of_type(effects, Reply)  # no welcome from a view that may be stale
    assert woken.quiet_until > 60.0
    assert woken.detectors["b"].is_available(60.5)  # the 59 s of silence were its own
    for second in range(61, 65):  # it runs on as usual, and is quiet for one detection period
        woken = step(woken, GossipTick(), float(second))[0]
    _, effects = step(woken, inbound(Join(member=Member.create("10.0.0.1:5704"))), 64.5)
    assert any(isinstance(r.message, Welcome) for r in of_type(effects, Reply))


def _ack(sender: str) -> HeartbeatAck:
    return HeartbeatAck(from_uuid=sender, sequence=1)


def test_a_step_that_names_no_field_of_the_node_is_a_bug_said_at_once() -> None:
    """Steps change the node with ``dataclasses.replace``: mypy checks each field name and type,
    and a misspelt name that slips past it still fails at once."""
    with pytest.raises(TypeError):
        dataclasses.replace(formed(), runing=False)  # type: ignore[call-arg]
