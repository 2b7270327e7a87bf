"""Pure keep-majority downing and gossip peer choice."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from test_state_properties import OPERATIONS, Cluster, histories

from messages import Member, MemberStatus
from messages.membership.downing import (
    Decision,
    Verdict,
    down_members,
    keep_majority,
    pending_unreachable,
)
from messages.membership.gossip import choose_gossip_peer, gossip_peers, needs_fast_gossip
from messages.membership.state import MembershipState
from messages.testing.simulator import converged_cluster

UUIDS = [f"member-{i:05d}" for i in range(7)]  # converged_cluster's, at 10.0.0.1:5701...

WITHOUT_ARBITRARY_DOWNS = tuple(op for op in OPERATIONS if op != "down")


def cut(state: MembershipState, observer: str, far: set[str]) -> MembershipState:
    """``state`` once ``observer``'s failure detector has marked the members in ``far``."""
    return state.set_reachability(observer, frozenset(far & {m.uuid for m in state.members}))


def decide(state: MembershipState, me: str, stable_for: float = 10.0) -> Decision:
    """The decision of member ``me`` holding ``state``."""
    return keep_majority(state, me, stable_for, down_after=10.0)


def test_nothing_happens_until_the_unreachable_set_has_been_stable_long_enough() -> None:
    cluster = converged_cluster(5)
    assert decide(cluster, UUIDS[0], stable_for=100.0).verdict is Verdict.WAIT
    partitioned = cut(cluster, UUIDS[0], set(UUIDS[3:5]))
    assert decide(partitioned, UUIDS[0], stable_for=9.9).verdict is Verdict.WAIT
    decision = decide(partitioned, UUIDS[0])
    assert decision.verdict is Verdict.DOWN_UNREACHABLE
    assert decision.unreachable == frozenset(UUIDS[3:5])


def test_the_minority_downs_itself_and_says_how_many_it_reached() -> None:
    decision = decide(cut(converged_cluster(5), UUIDS[4], set(UUIDS[:3])), UUIDS[4])
    assert decision.verdict is Verdict.DOWN_SELF
    assert (decision.reachable_count, decision.total) == (2, 5)


def test_a_tie_keeps_the_side_with_the_lowest_address() -> None:
    cluster = converged_cluster(4)
    assert (
        decide(cut(cluster, UUIDS[0], set(UUIDS[2:4])), UUIDS[0]).verdict
        is Verdict.DOWN_UNREACHABLE
    )
    assert decide(cut(cluster, UUIDS[3], set(UUIDS[:2])), UUIDS[3]).verdict is Verdict.DOWN_SELF


def test_joining_down_and_exiting_members_do_not_count() -> None:
    cluster = converged_cluster(3).add_joining(Member.create("10.0.0.1:5800"), by=UUIDS[0])
    cluster = cluster.set_status(UUIDS[2], MemberStatus.DOWN, by=UUIDS[0])
    decision = decide(cut(cluster, UUIDS[0], {UUIDS[1]}), UUIDS[0])
    assert (decision.reachable_count, decision.total) == (1, 2)  # UUIDS[0] of UUIDS[0] and [1]


def test_a_joiner_that_may_be_up_on_the_other_side_makes_a_tie_a_loss() -> None:
    """2 of 4 up members here, with the lowest address: a tie this side wins, unless the joiner on
    the other side has been moved to UP there (the leader may have done it just before the cut)."""
    cluster = converged_cluster(4).add_joining(Member.create("10.0.0.1:5800"), by=UUIDS[3])
    joiner = cluster.members[-1].uuid
    decision = decide(cut(cluster, UUIDS[0], {UUIDS[2], UUIDS[3], joiner}), UUIDS[0])
    assert decision.verdict is Verdict.DOWN_SELF


def test_a_leaver_that_may_be_exiting_here_is_not_counted_to_keep() -> None:
    cluster = converged_cluster(5).set_status(UUIDS[2], MemberStatus.LEAVING, by=UUIDS[2])
    assert (
        decide(cut(cluster, UUIDS[0], set(UUIDS[3:5])), UUIDS[0]).verdict
        is Verdict.DOWN_UNREACHABLE
    )
    # the same three, but the leaver's address is now the lowest one of the tie that remains
    far = {UUIDS[0], UUIDS[1]}
    assert decide(cut(cluster, UUIDS[4], far), UUIDS[4]).verdict is Verdict.DOWN_SELF


def test_a_joiner_over_there_takes_part_in_the_tie_break() -> None:
    """One member UP here, one joiner over there with a lower address: the joiner may have been
    moved UP over there (by a leader this side never heard of) and would then keep by the tie's
    lowest address, so this side must not keep too (a split brain hypothesis found)."""
    for port, verdict in ((5700, Verdict.DOWN_SELF), (5800, Verdict.DOWN_UNREACHABLE)):
        joiner = Member.create(f"10.0.0.1:{port}")
        cluster = converged_cluster(1).add_joining(joiner, by=UUIDS[0])
        assert decide(cut(cluster, UUIDS[0], {joiner.uuid}), UUIDS[0]).verdict is verdict


def test_a_member_joining_in_its_own_view_never_keeps() -> None:
    """Its view may be older than moves the leader made without waiting for it (UP members gone
    since, the leader EXITING): keeping on it split a cluster in two (hypothesis found it). It
    waits; an UP member holding the same view keeps."""
    joiner = Member.create("10.0.0.1:5800")
    cluster = converged_cluster(2).add_joining(joiner, by=UUIDS[0])
    assert decide(cut(cluster, joiner.uuid, {UUIDS[1]}), joiner.uuid).verdict is Verdict.WAIT
    assert decide(cut(cluster, UUIDS[0], {UUIDS[1]}), UUIDS[0]).verdict is (
        Verdict.DOWN_UNREACHABLE
    )


@settings(max_examples=400, deadline=None)
@given(histories(WITHOUT_ARBITRARY_DOWNS), st.data())
def test_no_two_sides_of_a_partition_both_keep_the_cluster(
    cluster: Cluster, data: st.DataObject
) -> None:
    """A partition can cut a cluster whose nodes hold different states: a join, an UP, a leave or
    a removal that has not spread yet. Each node decides from its own state, as the actor does.
    Never may a node on each side both keep the cluster (and down the other side)."""
    downed = {
        m.uuid for s in cluster.all_states for m in s.members if m.status is MemberStatus.DOWN
    }
    live = [node for node in cluster.live_nodes() if node not in downed]  # restarted: gone
    crashed = set(cluster.histories) - set(live)
    side = frozenset(data.draw(st.sets(st.sampled_from(live)))) if live else frozenset()
    other = frozenset(live) - side
    keepers: dict[frozenset[str], list[str]] = {side: [], other: []}
    for own_side, far_side in ((side, other), (other, side)):
        for node in sorted(own_side):
            state = cut(cluster.state(node), node, set(far_side | crashed) - {node})
            if decide(state, node).verdict is Verdict.DOWN_UNREACHABLE:
                keepers[own_side].append(node)
    assert not (keepers[side] and keepers[other]), f"split brain: {keepers}"


def test_downing_skips_members_that_are_gone_or_already_down() -> None:
    state = converged_cluster(4).set_status(UUIDS[2], MemberStatus.DOWN, by=UUIDS[0])
    pending = frozenset({UUIDS[1], UUIDS[2], "no-such-member"})

    downed = down_members(state, pending, by=UUIDS[0])

    assert {m.uuid for m in downed.members if m.status is MemberStatus.DOWN} == set(UUIDS[1:3])
    assert down_members(state, pending, by="no-such-member") is state


def test_pending_unreachable_leaves_out_members_already_down() -> None:
    state = converged_cluster(4)
    state = state.set_reachability(UUIDS[0], frozenset(UUIDS[2:4]))
    assert pending_unreachable(state) == frozenset(UUIDS[2:4])
    state = state.set_status(UUIDS[3], MemberStatus.DOWN, by=UUIDS[0])
    assert pending_unreachable(state) == frozenset({UUIDS[2]})


def test_gossip_goes_to_reachable_live_peers_and_prefers_those_that_have_not_seen() -> None:
    state = converged_cluster(6).set_reachability(UUIDS[0], frozenset({UUIDS[5]}))
    assert {m.uuid for m in gossip_peers(state, UUIDS[0])} == set(UUIDS[1:5])
    state = state.with_seen(frozenset(UUIDS[1:3]))  # 0, 1, 2 have seen; 3 and 4 have not
    rng = random.Random(7)
    picks = [choose_gossip_peer(state, UUIDS[0], rng) for _ in range(1000)]
    unseen_share = sum(p is not None and p.uuid in UUIDS[3:5] for p in picks) / len(picks)
    assert 0.85 < unseen_share < 0.95  # 0.8 biased + 0.2 * 2/4 uniform = 0.9
    assert choose_gossip_peer(converged_cluster(1), UUIDS[0], rng) is None


def test_fast_gossip_until_every_up_or_leaving_member_has_seen() -> None:
    state = converged_cluster(6)
    assert not needs_fast_gossip(state)
    changed = state.set_status(UUIDS[1], MemberStatus.LEAVING, by=UUIDS[0])
    assert needs_fast_gossip(changed)
    assert needs_fast_gossip(changed.with_seen(frozenset(UUIDS[1:5])))
    assert not needs_fast_gossip(changed.with_seen(frozenset(UUIDS[1:6])))


def test_gossip_targets_follow_this_nodes_own_row_not_the_union_of_rows() -> None:
    """Right after a partition heals, each side's rows mark the other: the union marks everyone
    unreachable, and only gossip chosen by this node's own row can spread the cleared rows."""
    state = converged_cluster(4)
    for observer in UUIDS[1:4]:
        state = state.set_reachability(observer, frozenset(UUIDS[:4]) - {observer})
    assert state.unreachable() == frozenset(UUIDS[:4])

    assert {m.uuid for m in gossip_peers(state, UUIDS[0])} == set(UUIDS[1:4])
    own_row = state.set_reachability(UUIDS[0], frozenset({UUIDS[3]}))
    assert {m.uuid for m in gossip_peers(own_row, UUIDS[0])} == set(UUIDS[1:3])


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=2, max_value=7), st.data())
def test_no_two_sides_keep_with_indirectly_connected_tables(size: int, data: st.DataObject) -> None:
    """Each side of a partition holds its own rows (every member watches every other at these
    sizes, so each marks the whole far side, and maybe some of its own side too) and any rows
    of the far side that leaked before the cut: cycles, stale and partial rows. Never may a
    member on each side keep the cluster."""
    members = UUIDS[:size]
    side = frozenset(data.draw(st.sets(st.sampled_from(members))))
    other = frozenset(members) - side
    subsets = st.sets(st.sampled_from(members))
    keepers: dict[frozenset[str], list[str]] = {side: [], other: []}
    for own_side, far_side in ((side, other), (other, side)):
        state = converged_cluster(size)
        for observer in members:
            # a near row marks the far side (and maybe some of its own side: partial links); a
            # far row leaked before the cut, or is empty
            row = far_side | data.draw(subsets) if observer in own_side else data.draw(subsets)
            state = state.set_reachability(observer, row - {observer})
        for node in sorted(own_side):
            if decide(state, node).verdict is Verdict.DOWN_UNREACHABLE:
                keepers[own_side].append(node)
    assert not (keepers[side] and keepers[other]), f"split brain: {keepers}"
