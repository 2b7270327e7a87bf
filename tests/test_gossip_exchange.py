"""Gossip exchanges between two members, driven through the step function by hand: each ends
after a few messages with both on one version (no sockets, no clock)."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from messages.address import Address
from messages.member import Member
from messages.membership.effects import GossipTick, Inbound, Reply, SendTo
from messages.membership.node import NodeState
from messages.membership.protocol import Gossip, GossipStatus
from messages.membership.publication import Publication
from messages.membership.state import MembershipState
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.codec import WIRE_CODEC
from messages.wire.handshake import Identity, Role

CLUSTER = converged_cluster(3)
A, B, C = (member.uuid for member in CLUSTER.members)
MAX_MESSAGES = 50

GossipMessage = Gossip | GossipStatus


DIGEST_FIRST = Settings.lan(gossip_digest_first_members=1)  # a large cluster's rule, at 3


def member(index: int, state: MembershipState, settings: Settings = DIGEST_FIRST) -> NodeState:
    """Member ``index`` of ``CLUSTER``, running, holding ``state``."""
    node = NodeState.create(CLUSTER.members[index], settings, seed=index)
    published, _ = Publication().publish(state)
    return dataclasses.replace(node, published=published, running=True, last_step=0.0)


def exchange(nodes: dict[str, NodeState], first: GossipMessage) -> list[GossipMessage]:
    """Deliver ``first`` and every gossip message it leads to, in order, until none is left
    (at most ``MAX_MESSAGES``); the messages delivered."""
    queue = [first]
    delivered: list[GossipMessage] = []
    while queue and len(delivered) < MAX_MESSAGES:
        message = queue.pop(0)
        delivered.append(message)
        link = Inbound(message, 1, "peer", Identity(message.from_uuid, Role.MEMBER))
        receiver = message.to_uuid
        nodes[receiver], effects = step(nodes[receiver], link, 0.1 * len(delivered))
        for effect in effects:
            if isinstance(effect, SendTo | Reply) and isinstance(effect.message, GossipMessage):
                queue.append(effect.message)
    return delivered


def status(node: NodeState, to: str) -> GossipStatus:
    return GossipStatus.of(node.state, node.uuid, to)


def test_a_status_exchange_between_concurrent_versions_ends_merged() -> None:
    """Two digests of concurrent versions were answered by each other's for ever (a ping-pong
    at network speed until one side changed); now the full state goes, once each way."""
    nodes = {
        A: member(0, CLUSTER.set_reachability(A, {C})),
        B: member(1, CLUSTER.set_reachability(B, {C})),
    }
    delivered = exchange(nodes, status(nodes[A], B))

    assert [type(message) for message in delivered] == [GossipStatus, Gossip, Gossip, GossipStatus]
    assert nodes[A].state.version == nodes[B].state.version
    assert nodes[A].state.unreachable() == nodes[B].state.unreachable() == {C}
    assert {A, B} <= nodes[A].state.seen


def test_a_status_exchange_brings_a_member_that_is_behind_up_to_date() -> None:
    ahead = CLUSTER.set_reachability(A, {C})
    nodes = {A: member(0, ahead), B: member(1, CLUSTER)}
    delivered = exchange(nodes, status(nodes[A], B))

    assert [type(message) for message in delivered] == [
        GossipStatus,
        GossipStatus,
        Gossip,
        GossipStatus,
    ]
    assert nodes[B].state.version == ahead.version
    assert {A, B} <= nodes[A].state.seen


def test_a_tick_sends_the_digest_even_to_a_peer_that_has_not_seen_the_version() -> None:
    """Status before gossip: the full state goes only where an exchange shows it is needed (the
    peer is behind, or concurrent); it went at once to every peer that had not seen the version,
    and a join storm's peers mostly had it already, or a newer one."""
    node = member(0, CLUSTER.set_reachability(A, {C}))
    assert node.state.seen == {A}
    for now in (0.1, 0.2, 0.3):
        node, effects = step(node, GossipTick(), now)
        sent = [e.message for e in effects if isinstance(e, SendTo)]
        assert sent
        assert all(isinstance(message, GossipStatus) for message in sent)


def gossiping_ticks(settings: Settings, lateness: float | list[float]) -> list[int]:
    """Which gossip ticks of a member that has a version nobody else has seen send anything,
    each tick coming ``lateness`` seconds after it was due (nine ticks), or as late as the
    tick's entry in the list."""
    node = member(0, CLUSTER.set_reachability(A, {C}), settings)
    latenesses = [lateness] * 9 if isinstance(lateness, float) else lateness
    gossiping, now = [], 0.0
    for tick, late in enumerate(latenesses, start=1):
        now = (now if node.gossip_due is None else node.gossip_due) + late
        node, effects = step(node, GossipTick(), now)
        if any(isinstance(effect, SendTo) for effect in effects):
            gossiping.append(tick)
    return gossiping


def test_a_large_cluster_short_of_cpu_gossips_at_the_slow_rate() -> None:
    """Fast ticks late by more than a tenth of their interval say the process is short of CPU,
    where the fast rate's full states only add work: 200 processes on one host took 37-64 s to
    form with it, 10-16 s without. On time, or in a small cluster, the fast rate stays."""
    every = list(range(1, 10))
    assert gossiping_ticks(DIGEST_FIRST, 0.0) == every
    assert gossiping_ticks(DIGEST_FIRST, 0.01) == every
    # The first tick is not late (nothing was due); from the second, one tick in three gossips.
    assert gossiping_ticks(DIGEST_FIRST, 0.2) == [1, 3, 6, 9]
    assert gossiping_ticks(Settings.lan(), 0.2) == every


def test_a_member_whose_ticks_come_on_time_again_speeds_up_again() -> None:
    """The spell short of CPU ends halfway: three late ticks, then on time. The member keeps
    the slow rate while the late tick ages (0.9 a tick: below a tenth of the interval after
    eleven), then every tick gossips again."""
    gossiping = gossiping_ticks(DIGEST_FIRST, [0.1] * 3 + [0.0] * 17)
    assert [tick for tick in gossiping if tick <= 13] == [1, 3, 6, 9, 12]
    assert [tick for tick in gossiping if tick >= 14] == list(range(14, 21))


def test_a_settled_ticks_lateness_is_the_grids_not_the_cpus() -> None:
    """A settled member's tick fires on the wall clock's grid, up to half an interval from when
    it was due: that says nothing of the CPU, and is not counted; it only ages what was."""
    node = member(0, CLUSTER.set_reachability(A, {C}))
    late_slow = dataclasses.replace(node, slow_gossip=True, gossip_due=0.0)
    assert step(late_slow, GossipTick(), 0.45)[0].gossip_lateness == 0.0
    behind_once = dataclasses.replace(late_slow, gossip_lateness=0.1)
    assert step(behind_once, GossipTick(), 0.45)[0].gossip_lateness < 0.1
    late_fast = dataclasses.replace(node, slow_gossip=False, gossip_due=0.0)
    assert step(late_fast, GossipTick(), 0.45)[0].gossip_lateness > 0.1


def test_a_small_cluster_sends_the_full_state_to_a_peer_that_has_not_seen_the_version() -> None:
    node = member(0, CLUSTER.set_reachability(A, {C}), Settings.lan())
    assert len(CLUSTER.members) < Settings.lan().gossip_digest_first_members
    node, effects = step(node, GossipTick(), 0.1)
    sent = [e.message for e in effects if isinstance(e, SendTo)]
    assert [type(message) for message in sent] == [Gossip]


def test_a_digest_from_a_joining_member_names_it_and_no_other_does() -> None:
    seed = Member.create(Address("127.0.0.1", 5701), member_uuid="seed")
    joiner = Member.create(Address("127.0.0.1", 5702), member_uuid="joiner")
    joining = MembershipState.initial(seed).add_joining(joiner, by="seed")
    node = NodeState.create(joiner, DIGEST_FIRST, seed=1)
    published, _ = Publication().publish(joining)
    node = dataclasses.replace(node, published=published, running=True, last_step=0.0)
    sent = []
    for now in (0.1, 0.2, 0.3):  # one gossip in three ticks: nobody waits for this version
        node, effects = step(node, GossipTick(), now)
        sent += [e.message for e in effects if isinstance(e, SendTo)]
    [digest] = sent
    assert isinstance(digest, GossipStatus)
    assert digest.joiner == joiner
    _, effects = step(member(0, CLUSTER), GossipTick(), 0.1)
    assert all(
        isinstance(e.message, GossipStatus) and e.message.joiner is None
        for e in effects
        if isinstance(e, SendTo)
    )


def test_a_settled_clusters_digest_names_nobody() -> None:
    """Once more than half have seen the version, a digest names those that have not: a
    settled cluster's names nobody, where the seen set cost 7.6 kB at 200 members (uuids of
    36 characters; 12 here)."""
    settled = converged_cluster(200)
    me, peer = settled.members[0].uuid, settled.members[1].uuid
    digest = GossipStatus.of(settled, me, peer)
    assert (digest.seen, digest.unseen) == (frozenset(), frozenset())
    assert digest.seen_given(settled.by_uuid) == settled.seen
    naming_all = GossipStatus(me, peer, settled.version, settled.seen)
    assert len(WIRE_CODEC.encode(digest)) < 300
    assert len(WIRE_CODEC.encode(naming_all)) > 200 * len(me)


@given(st.sets(st.sampled_from(sorted(converged_cluster(9).by_uuid))))
def test_a_digest_gives_the_same_seen_set_in_either_form(seen: set[str]) -> None:
    cluster = converged_cluster(9)
    state = cluster.replaced(seen=frozenset(seen))
    digest = GossipStatus.of(state, A, B)
    assert digest.seen_given(cluster.by_uuid) == seen
    assert (digest.unseen is None) == (2 * len(seen) <= len(cluster.members))


def test_digests_of_one_version_naming_who_has_not_seen_it_union_the_seen_sets() -> None:
    nodes = {
        A: member(0, CLUSTER.replaced(seen=frozenset({A, B}))),
        B: member(1, CLUSTER.replaced(seen=frozenset({B, C}))),
    }
    first = status(nodes[A], B)
    assert (first.seen, first.unseen) == (frozenset(), frozenset({C}))
    delivered = exchange(nodes, first)

    assert [type(message) for message in delivered] == [GossipStatus, GossipStatus]
    assert nodes[A].state.seen == nodes[B].state.seen == {A, B, C}
