"""The member step function, driven by hand: no threads, no sockets, no clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import pytest
from state_strategies import BROKEN_STATES

from messages.address import Address
from messages.events import MemberJoined, MemberLeft, MemberUp
from messages.member import Member, MemberStatus
from messages.membership.answerer import HeartbeatAnswerer, answerable, heartbeat_answerer
from messages.membership.effects import (
    Dropped,
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    JoinAttempt,
    JoinCluster,
    Joined,
    JoinFailed,
    JoinTried,
    Leave,
    LeaveTimedOut,
    MembershipChanged,
    Paused,
    Reply,
    SendTo,
    SetTimer,
    Suspected,
    Termination,
    TerminationKind,
)
from messages.membership.leader import leader_actions
from messages.membership.node import NodeState
from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Join,
    JoinRefused,
    RemovalNotice,
    Suspect,
    Welcome,
)
from messages.membership.publication import Publication
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.handshake import Identity, Role

T = TypeVar("T")
SETTINGS = Settings.lan()
A = Member.create(Address("10.0.0.1", 5701), member_uuid="a")
B = Member.create(Address("10.0.0.1", 5702), member_uuid="b")


def formed(member: Member = A, now: float = 0.0) -> NodeState:
    node, _ = step(NodeState.create(member, SETTINGS, seed=1), JoinCluster(seeds=()), now)
    return node


def converged_member(size: int = 3) -> NodeState:
    """``member-00000`` (the leader) of a converged cluster of ``size``, running."""
    state = converged_cluster(size)
    me = state.members[0]
    published, _ = Publication().publish(state)
    node = NodeState.create(me, SETTINGS, seed=1)
    return dataclasses.replace(node, published=published, running=True, last_step=0.0)


def of_type(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [effect for effect in effects if isinstance(effect, kind)]


def inbound(
    message: object, link: int = 7, peer: str = "peer", identity: Identity | None = None
) -> Inbound:
    """``message`` on ``link``, whose handshake named ``identity``: by default the peer an honest
    member would be, the sender it names (a joiner, at its address), else seed ``A``."""
    return Inbound(message, link, peer, identity or claimed(message))


def claimed(message: object) -> Identity:
    match message:
        case Join(member=member):
            return Identity(member.uuid, Role.MEMBER, member.address)
        case _ if isinstance(sender := getattr(message, "from_uuid", None), str):
            return Identity(sender, Role.MEMBER)
        case _:
            return Identity(A.uuid, Role.MEMBER, A.address)


def test_a_member_without_seeds_forms_a_cluster_and_is_up_at_once() -> None:
    node, effects = step(NodeState.create(A, SETTINGS, seed=1), JoinCluster(seeds=()), 0.0)

    assert Joined(formed=True) in effects
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
    assert JoinTried(1, A.address, 0.0, f"tried {A.address}") in effects
    assert [type(t.message) for t in of_type(effects, SetTimer)] == [JoinAttempt]

    seed, answers = step(seed, inbound(Join(member=B), link=3), 0.1)
    welcome = of_type(answers, Reply)[-1]
    assert welcome.link == 3
    assert isinstance(welcome.message, Welcome)
    assert seed.state.member("b") is not None

    joiner, effects = step(joiner, inbound(welcome.message), 0.2)
    assert Joined(formed=False) in effects
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


def test_a_join_that_retries_forever_tries_on_past_the_deadline_and_still_joins() -> None:
    settings = SETTINGS.replace(join_retry_forever=True)
    node, _ = step(NodeState.create(B, settings, seed=2), JoinCluster((A.address,)), 0.0)
    late = settings.join_timeout * 3

    node, effects = step(node, JoinAttempt(1), late)

    assert not of_type(effects, JoinFailed)
    assert SendTo(A.address, Join(member=B)) in effects
    tried = of_type(effects, JoinTried)
    assert [(t.attempt, t.waited) for t in tried] == [(2, late)]
    timers = [t for t in of_type(effects, SetTimer) if isinstance(t.message, JoinAttempt)]
    assert len(timers) == 1
    assert 0 < timers[0].delay <= settings.join_backoff_max * (1 + settings.backoff_jitter)

    _, answers = step(formed(), inbound(Join(member=B), link=3), 0.1)
    node, effects = step(node, inbound(of_type(answers, Reply)[-1].message), late + 1)
    assert Joined(formed=False) in effects
    assert node.joined


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
    node = converged_member()
    sender = node.state.members[1]
    downed = node.state.set_status(node.uuid, MemberStatus.DOWN, by=sender.uuid)
    notice = RemovalNotice(to_uuid=node.uuid, reason="downed", state=downed)
    _, effects = step(node, inbound(notice, identity=Identity(sender.uuid, Role.MEMBER)), 1.0)
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


def test_a_leaver_that_learns_of_its_removal_stops_without_gossiping_a_state_it_is_not_in() -> None:
    """Its last state holds no member for it: any peer would drop that gossip (rule
    ``sender-in-state``), so it sends none and stops."""
    state = converged_cluster(3)
    leader, leaver, _ = state.members
    published, _ = Publication().publish(state)
    node = NodeState.create(leaver, SETTINGS, seed=1)
    node = dataclasses.replace(node, published=published, running=True, last_step=0.0)
    node, _ = step(node, Leave(), 1.0)
    removed = node.state
    while not removed.is_tombstoned(leaver.uuid):  # the leader: EXITING, then removed
        seen = frozenset(member.uuid for member in removed.members)
        removed = leader_actions(removed.replaced(seen=seen), leader.uuid, now=1.0)
    goodbye = Gossip(from_uuid=leader.uuid, to_uuid=leaver.uuid, state=removed)

    node, effects = step(node, inbound(goodbye), 1.5)

    sent = [e.message for e in of_type(effects, SendTo)] + [
        e.message for e in of_type(effects, Reply)
    ]
    assert not [message for message in sent if isinstance(message, Gossip | GossipStatus)]
    assert node.termination is not None
    assert node.termination.kind is TerminationKind.LEFT


def test_invalid_gossip_is_dropped_and_said_with_the_rule_it_breaks() -> None:
    node = formed()
    bogus = Gossip(from_uuid="stranger", to_uuid="a", state=node.state)  # sender not in state
    after, effects = step(node, inbound(bogus), 1.0)
    assert after == dataclasses.replace(node, last_step=1.0)
    [dropped] = effects
    assert dropped == Dropped(
        "Gossip",
        "peer",
        "sender-in-state",
        "gossip from stranger holds no member stranger",
        "stranger",
    )


@pytest.mark.parametrize("rule", list(BROKEN_STATES))
def test_gossip_of_an_inconsistent_state_is_dropped_naming_sender_and_rule(rule: str) -> None:
    node = converged_member()
    peer = node.state.members[1].uuid
    broken = BROKEN_STATES[rule](node.state)
    gossip = Gossip(from_uuid=peer, to_uuid=node.uuid, state=broken)
    after, effects = step(node, inbound(gossip, peer="10.0.0.1:40000"), 1.0)
    assert after == dataclasses.replace(node, last_step=1.0)
    assert [(d.message, d.peer, d.sender, d.rule) for d in of_type(effects, Dropped)] == [
        ("Gossip", "10.0.0.1:40000", peer, rule)
    ]
    assert len(effects) == 1


def test_a_message_a_member_never_takes_is_dropped_as_such() -> None:
    node = formed()
    update = inbound(ClientUpdate(state=node.state), identity=Identity("b", Role.MEMBER))
    after, effects = step(node, update, 1.0)
    assert after == dataclasses.replace(node, last_step=1.0)
    assert [(d.message, d.rule) for d in of_type(effects, Dropped)] == [
        ("ClientUpdate", "known-type")
    ]


def test_a_member_waking_from_a_pause_discounts_it_and_welcomes_nobody_for_a_while() -> None:
    seed = formed()
    seed, _ = step(seed, inbound(Join(member=B)), 0.1)
    seed = step(seed, HeartbeatTick(), 1.0)[0]  # B is a heartbeat target now
    seed = step(seed, inbound(_ack("b")), 1.01)[0]
    assert "b" in seed.detectors

    joiner = Member.create("10.0.0.1:5703")
    woken, effects = step(seed, inbound(Join(member=joiner)), 60.0)
    assert not of_type(effects, Reply)  # no welcome from a view that may be stale
    assert of_type(effects, Paused) == [Paused(60.0 - 1.01)]
    [ignored] = of_type(effects, Dropped)
    assert (ignored.message, ignored.rule, ignored.sender) == ("Join", None, joiner.uuid)
    assert woken.quiet_until > 60.0
    assert woken.detectors["b"].is_available(60.5)  # the 59 s of silence were its own
    for second in range(61, 65):  # it runs on as usual, and is quiet for one detection period
        woken = step(woken, GossipTick(), float(second))[0]
    _, effects = step(woken, inbound(Join(member=Member.create("10.0.0.1:5704"))), 64.5)
    assert any(isinstance(r.message, Welcome) for r in of_type(effects, Reply))


def test_a_target_that_stops_answering_is_suspected_once() -> None:
    seed = formed()
    seed, _ = step(seed, inbound(Join(member=B)), 0.1)
    seed = step(seed, HeartbeatTick(), 1.0)[0]
    seed = step(seed, inbound(_ack("b")), 1.01)[0]
    suspected: list[Suspected] = []
    for second in range(2, 12):  # no answer any more
        seed, effects = step(seed, HeartbeatTick(), float(second))
        suspected += of_type(effects, Suspected)
    assert [s.member.uuid for s in suspected] == ["b"]
    assert "b" in seed.state.unreachable()


def _ack(sender: str) -> HeartbeatAck:
    return HeartbeatAck(from_uuid=sender, sequence=1)


def test_a_leave_sets_its_timeout_and_a_leave_not_confirmed_by_then_stops_the_member() -> None:
    node, effects = step(converged_member(), Leave(), 1.0)
    assert SetTimer(SETTINGS.leave_timeout, LeaveTimedOut()) in effects
    assert node.leaving
    me = node.state.member(node.uuid)
    assert me is not None
    assert me.status is MemberStatus.LEAVING  # the others never confirm it here

    node, effects = step(node, LeaveTimedOut(), 1.0 + SETTINGS.leave_timeout)  # no tick between
    gave_up = Termination(TerminationKind.STOPPED, "the leave was not confirmed within 15 s")
    assert of_type(effects, Termination) == [gave_up]
    assert node.termination == gave_up
    assert not node.running


def test_a_leave_timeout_after_the_leave_ended_is_nothing() -> None:
    node, _ = step(formed(), Leave(), 1.0)
    for tick in range(1, 4):
        node = step(node, GossipTick(), 1.0 + tick)[0]
    assert node.termination == Termination(TerminationKind.LEFT, "left the cluster")
    assert step(node, LeaveTimedOut(), 1.0 + SETTINGS.leave_timeout) == (node, ())


def test_a_step_that_names_no_field_of_the_node_is_a_bug_said_at_once() -> None:
    """Steps change the node with ``dataclasses.replace``: mypy checks each field name and type,
    and a misspelt name that slips past it still fails at once."""
    with pytest.raises(TypeError):
        dataclasses.replace(formed(), runing=False)  # type: ignore[call-arg]


def test_gossip_from_a_member_this_one_marks_unreachable_is_not_taken_until_the_mark_clears() -> (
    None
):
    node = converged_member()
    peer = node.state.members[1].uuid
    marked = node.state.set_reachability(node.uuid, frozenset({peer}))
    node = dataclasses.replace(node, published=Publication().publish(marked)[0])
    other = node.state.members[2].uuid
    accusing = node.state.set_reachability(peer, frozenset({node.uuid, other}))
    for message in (
        Gossip(from_uuid=peer, to_uuid=node.uuid, state=accusing),
        GossipStatus(from_uuid=peer, to_uuid=node.uuid, version=accusing.version, seen=frozenset()),
    ):
        after, effects = step(node, inbound(message), 1.0)
        assert after == dataclasses.replace(node, last_step=1.0)
        assert not effects
    healed = dataclasses.replace(
        node,
        published=Publication().publish(node.state.set_reachability(node.uuid, frozenset()))[0],
    )
    after, _ = step(healed, inbound(Gossip(from_uuid=peer, to_uuid=node.uuid, state=accusing)), 1.0)
    assert after.state.reachability_row(peer) == {node.uuid, other}


def test_the_io_thread_answers_heartbeats_of_live_members_once_joined_as_the_step_does() -> None:
    node = converged_member(5)
    me, down, leaving, removed, up = (member.uuid for member in node.state.members)
    state = node.state.set_status(down, MemberStatus.DOWN, by=me)
    state = state.set_status(leaving, MemberStatus.LEAVING, by=me)
    assert answerable(state.replaced(tombstones=((removed, 0.0),)), me) == {leaving, up}

    answerer = heartbeat_answerer(node)
    assert answerer == HeartbeatAnswerer(me, frozenset({down, leaving, removed, up}))
    for message, sequence in (
        (Heartbeat(from_uuid=up, to_uuid=me, sequence=3), 3),
        (Suspect(from_uuid=up, to_uuid=me, nonce=9), 9),
    ):
        ack = HeartbeatAck(from_uuid=me, sequence=sequence)
        assert answerer.answer(message, Identity(up, Role.MEMBER)) == ack
        assert answerer.answer(message, Identity("stranger", Role.MEMBER)) is None
        assert answerer.answer(message, Identity(up, Role.CLIENT)) is None
        _, effects = step(node, inbound(message), 0.0)
        assert [reply.message for reply in of_type(effects, Reply)] == [ack]
    for other in (
        Heartbeat(from_uuid="stranger", to_uuid=me, sequence=1),
        Heartbeat(from_uuid=up, to_uuid="earlier-incarnation", sequence=1),
        HeartbeatAck(from_uuid=up, sequence=1),
    ):
        assert answerer.answer(other, Identity(up, Role.MEMBER)) is None

    assert heartbeat_answerer(NodeState.create(A, SETTINGS, seed=1)) is None  # not joined
    out = Termination(TerminationKind.REMOVED, "x")
    assert heartbeat_answerer(dataclasses.replace(node, termination=out)) is None


def _gossip_timers(effects: Sequence[Effect]) -> list[float]:
    return [timer.delay for timer in of_type(effects, SetTimer) if timer.message == GossipTick()]


def test_a_settled_member_ticks_and_gossips_once_a_gossip_interval_until_news() -> None:
    fast = SETTINGS.gossip_interval / SETTINGS.fast_gossip_factor
    node = converged_member()
    assert node.state.is_settled()
    for now in (0.3, 1.3):
        node, effects = step(node, GossipTick(), now)
        assert [type(send.message) for send in of_type(effects, SendTo)] == [GossipStatus]
        assert _gossip_timers(effects) == [SETTINGS.gossip_interval]
    node, effects = step(node, inbound(HeartbeatAck(from_uuid="member-00001", sequence=1)), 2.0)
    assert _gossip_timers(effects) == []  # nothing new: the slow tick stands

    # News (a joiner): a tick at once, then the fast ones.
    joiner = Member.create(Address("127.0.0.1", 9999), member_uuid="joiner")
    node, effects = step(node, inbound(Join(member=joiner)), 2.2)
    assert _gossip_timers(effects) == [0.0]
    node, effects = step(node, GossipTick(), 2.2)
    assert _gossip_timers(effects) == [fast]
    node, effects = step(node, inbound(Join(member=joiner)), 2.3)
    assert _gossip_timers(effects) == []  # already fast


def test_a_leave_or_an_unreachable_member_or_an_unseen_version_is_news() -> None:
    node = converged_member()
    assert _gossip_timers(step(node, Leave(), 0.1)[1]) == []  # its ticks are fast ones already
    slow, _ = step(node, GossipTick(), 0.1)
    assert _gossip_timers(step(slow, Leave(), 0.2)[1]) == [0.0]
    assert not node.state.set_reachability(node.uuid, {"member-00002"}).is_settled()
    assert not node.state.replaced(seen=frozenset({node.uuid})).is_settled()
    leaving = node.state.set_status("member-00002", MemberStatus.LEAVING, by=node.uuid)
    assert not leaving.replaced(seen=frozenset(m.uuid for m in leaving.members)).is_settled()
