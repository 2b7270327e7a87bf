"""The authority rules of the pure core (``messages.membership.authority``), step by step: who may
tell a member what, given the identity its link's handshake established."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import pytest

from messages.address import Address
from messages.member import Member, MemberStatus
from messages.membership.effects import (
    Disconnect,
    Dropped,
    Effect,
    Inbound,
    JoinCluster,
    Joined,
    JoinFailed,
    Termination,
)
from messages.membership.leader import leader_actions
from messages.membership.node import NodeState
from messages.membership.protocol import (
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Join,
    JoinRefused,
    ProbeResult,
    RemovalNotice,
    Watch,
    Welcome,
)
from messages.membership.publication import Publication
from messages.membership.state import MembershipState
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.handshake import Identity, Role

T = TypeVar("T")
SETTINGS = Settings.lan()
STATE = converged_cluster(3)
ME, PEER, THIRD = STATE.members
STRANGER = Identity("stranger", Role.MEMBER, Address("10.9.9.9", 1))
CLIENT = Identity("client", Role.CLIENT)


def member_of(state: MembershipState = STATE) -> NodeState:
    """``ME``, running in a converged cluster whose state is ``state``."""
    published, _ = Publication().publish(state)
    node = NodeState.create(ME, SETTINGS, seed=1)
    return dataclasses.replace(node, published=published, running=True, last_step=0.0)


def as_link(identity: Identity | None, message: object) -> Inbound:
    return Inbound(message, 5, "peer", identity)  # type: ignore[arg-type]


def of_type(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [effect for effect in effects if isinstance(effect, kind)]


def rules(effects: Sequence[Effect]) -> list[str | None]:
    return [dropped.rule for dropped in of_type(effects, Dropped)]


def link_of(member: Member) -> Identity:
    return Identity(member.uuid, Role.MEMBER, member.address)


def downed(state: MembershipState = STATE, uuid: str = ME.uuid) -> MembershipState:
    return state.set_status(uuid, MemberStatus.DOWN, by=PEER.uuid)


# -- removal notices ------------------------------------------------------------------------


def test_a_removal_notice_with_the_senders_state_showing_the_receiver_down_stops_it() -> None:
    notice = RemovalNotice(to_uuid=ME.uuid, reason="downed", state=downed())
    node, effects = step(member_of(), as_link(link_of(PEER), notice), 1.0)
    assert node.termination is not None
    assert of_type(effects, Termination)


def test_a_removal_notice_tombstoning_the_receiver_stops_it() -> None:
    seen = downed().with_seen({m.uuid for m in STATE.members})
    removed = leader_actions(seen, PEER.uuid, 10.0)  # PEER leads once ME is DOWN
    assert removed.is_tombstoned(ME.uuid)
    notice = RemovalNotice(to_uuid=ME.uuid, reason="removed", state=removed)
    node, _ = step(member_of(), as_link(link_of(PEER), notice), 1.0)
    assert node.termination is not None


@pytest.mark.parametrize(
    ("identity", "state", "rule"),
    [
        (None, downed(), "link-identified"),
        (STRANGER, downed(), "notice-from-member"),
        (link_of(PEER), None, "notice-shows-removal"),
        (link_of(PEER), STATE, "notice-shows-removal"),  # the sender's gossip keeps the receiver
        (link_of(PEER), downed(downed(), PEER.uuid), "notice-shows-removal"),  # sender DOWN there
        (link_of(ME), downed(), "link-not-self"),
    ],
)
def test_a_removal_notice_that_does_not_agree_stops_nobody(
    identity: Identity | None, state: MembershipState | None, rule: str
) -> None:
    notice = RemovalNotice(to_uuid=ME.uuid, reason="forged", state=state)
    node, effects = step(member_of(), as_link(identity, notice), 1.0)
    assert node.termination is None
    assert rules(effects) == [rule]


def test_a_removal_notice_from_a_member_downed_in_the_receivers_view_stops_nobody() -> None:
    node = member_of(downed(STATE, PEER.uuid).seen_by(ME.uuid))
    notice = RemovalNotice(to_uuid=ME.uuid, reason="forged", state=downed())
    node, effects = step(node, as_link(link_of(PEER), notice), 1.0)
    assert node.termination is None
    assert rules(effects) == ["notice-from-member"]


def test_a_removed_member_is_told_so_with_the_state_that_shows_it() -> None:
    node = member_of(downed(STATE, PEER.uuid))
    gossip = GossipStatus(PEER.uuid, ME.uuid, node.state.version, frozenset())
    _, effects = step(node, as_link(link_of(PEER), gossip), 1.0)
    [notice] = [
        e.message for e in effects if isinstance(getattr(e, "message", None), RemovalNotice)
    ]
    assert isinstance(notice, RemovalNotice)
    assert notice.state is not None
    assert notice.state.removal_reason(PEER.uuid) is not None


# -- gossip and probes ----------------------------------------------------------------------


def test_gossip_in_another_members_name_changes_nothing() -> None:
    forged = downed(STATE, THIRD.uuid)
    node = member_of()
    for identity in (STRANGER, link_of(THIRD)):
        after, effects = step(node, as_link(identity, Gossip(PEER.uuid, ME.uuid, forged)), 1.0)
        assert after.state == node.state
        assert rules(effects) == ["sender-is-link"]


def test_gossip_from_the_member_its_link_named_is_merged() -> None:
    gossip = Gossip(PEER.uuid, ME.uuid, downed(STATE, THIRD.uuid))
    after, _ = step(member_of(), as_link(link_of(PEER), gossip), 1.0)
    assert after.state.removal_reason(THIRD.uuid) is not None  # DOWN, or removed by ME, leader


def test_a_joiner_nobody_here_knows_is_introduced_by_its_gossip_and_nothing_else_is_taken() -> None:
    joiner = Member.create(Address("10.0.0.9", 5701), member_uuid="joiner")
    theirs = downed(STATE, THIRD.uuid).add_joining(joiner, by=PEER.uuid)
    after, _ = step(member_of(), as_link(link_of(joiner), Gossip("joiner", ME.uuid, theirs)), 1.0)
    added = after.state.member("joiner")
    assert added is not None
    assert added.status is MemberStatus.JOINING
    third = after.state.member(THIRD.uuid)
    assert third is not None
    assert third.status is MemberStatus.UP

    elsewhere = Identity("joiner", Role.MEMBER, Address("10.0.0.8", 1))
    _, effects = step(member_of(), as_link(elsewhere, Gossip("joiner", ME.uuid, theirs)), 1.0)
    assert rules(effects) == ["joiner-is-link"]


def test_a_joiner_nobody_here_knows_is_introduced_by_its_digest_too() -> None:
    """Members gossip digests first: a joiner's digest names it (``joiner``), so a member that
    does not know it adds it as its full gossip would have; a digest without it, or naming
    another member, introduces nobody."""
    joiner = Member.create(Address("10.0.0.9", 5701), member_uuid="joiner")
    theirs = STATE.add_joining(joiner, by=PEER.uuid)
    status = GossipStatus("joiner", ME.uuid, theirs.version, theirs.seen, joiner=joiner)
    after, _ = step(member_of(), as_link(link_of(joiner), status), 1.0)
    added = after.state.member("joiner")
    assert added is not None
    assert added.status is MemberStatus.JOINING

    node = member_of()
    for message, rule in (
        (GossipStatus("joiner", ME.uuid, theirs.version, theirs.seen), None),
        (
            GossipStatus("joiner", ME.uuid, theirs.version, theirs.seen, joiner=THIRD),
            "status-joiner-is-sender",
        ),
    ):
        after, effects = step(node, as_link(link_of(joiner), message), 1.0)
        assert after.state == node.state
        assert rules(effects) == [rule]
    elsewhere = Identity("joiner", Role.MEMBER, Address("10.0.0.8", 1))
    _, effects = step(node, as_link(elsewhere, status), 1.0)
    assert rules(effects) == ["joiner-is-link"]


def test_a_probe_result_from_a_downed_relay_is_dropped() -> None:
    node = member_of(downed(STATE, PEER.uuid))
    result = ProbeResult(PEER.uuid, ME.uuid, THIRD.uuid, nonce=1, alive=False)
    _, effects = step(node, as_link(link_of(PEER), result), 1.0)
    assert rules(effects) == ["sender-in-good-standing"]


def test_a_heartbeat_ack_in_another_members_name_feeds_no_detector() -> None:
    _, effects = step(member_of(), as_link(link_of(THIRD), HeartbeatAck(PEER.uuid, 1)), 1.0)
    assert rules(effects) == ["sender-is-link"]


# -- clients --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        RemovalNotice(to_uuid=ME.uuid, reason="forged", state=downed()),
        Gossip(PEER.uuid, ME.uuid, downed(STATE, THIRD.uuid)),
        Heartbeat("client", ME.uuid, 1),
        Join(Member.create(Address("10.0.0.9", 1), member_uuid="client")),
    ],
)
def test_a_client_sending_a_membership_message_has_its_link_closed(message: object) -> None:
    node = member_of()
    after, effects = step(node, as_link(CLIENT, message), 1.0)
    assert after.state == node.state
    assert after.termination is None
    assert rules(effects) == ["client-changes-nothing"]
    assert [d.link for d in of_type(effects, Disconnect)] == [5]


def test_a_client_may_watch() -> None:
    _, effects = step(member_of(), as_link(CLIENT, Watch()), 1.0)
    assert not of_type(effects, Disconnect)
    assert not of_type(effects, Dropped)


# -- joins ----------------------------------------------------------------------------------


def test_a_join_must_name_its_links_uuid_and_address() -> None:
    joiner = Member.create(Address("10.0.0.9", 5701), member_uuid="joiner")
    node = member_of()
    for identity in (
        Identity("other", Role.MEMBER, joiner.address),
        Identity("joiner", Role.MEMBER, PEER.address),  # a new incarnation in PEER's place
    ):
        after, effects = step(node, as_link(identity, Join(joiner)), 1.0)
        assert after.state == node.state
        assert rules(effects) == ["joiner-is-link"]
    after, _ = step(node, as_link(link_of(joiner), Join(joiner)), 1.0)
    assert after.state.member("joiner") is not None


SEED = Member.create(Address("10.0.0.1", 5701), member_uuid="seed")
JOINER = Member.create(Address("10.0.0.2", 5701), member_uuid="joiner")


def joining() -> NodeState:
    node, _ = step(NodeState.create(JOINER, SETTINGS, seed=2), JoinCluster((SEED.address,)), 0.0)
    return node


def welcome(by: Member = SEED) -> Welcome:
    return Welcome(MembershipState.initial(by).add_joining(JOINER, by=by.uuid))


def test_a_welcome_counts_from_the_seed_dialled_only() -> None:
    node, effects = step(joining(), as_link(link_of(SEED), welcome()), 0.1)
    assert Joined(formed=False) in effects

    impostor = Member.create(Address("10.0.0.3", 5701), member_uuid="impostor")
    for identity, message in (
        (link_of(impostor), welcome(impostor)),  # not a seed
        (Identity("impostor", Role.MEMBER, SEED.address), welcome()),  # the state lacks it
    ):
        node, effects = step(joining(), as_link(identity, message), 0.1)
        assert not node.joined
        assert rules(effects) == ["answer-from-seed"]


def test_a_join_refusal_counts_from_a_seed_only() -> None:
    refused = JoinRefused(reason="forged")
    _, effects = step(joining(), as_link(link_of(THIRD), refused), 0.1)
    assert not of_type(effects, JoinFailed)
    assert rules(effects) == ["answer-from-seed"]
    _, effects = step(joining(), as_link(link_of(SEED), refused), 0.1)
    assert of_type(effects, JoinFailed)
