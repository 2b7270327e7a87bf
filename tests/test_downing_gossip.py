"""Pure keep-majority downing and gossip peer choice."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from messages import Address, MemberStatus
from messages.downing import (
    Verdict,
    down_members,
    keep_majority,
    pending_unreachable,
    voting_members,
)
from messages.gossip import choose_gossip_peer, gossip_peers, needs_fast_gossip
from messages.simulation import converged_cluster

UUIDS = [f"member-{i:05d}" for i in range(7)]


def voters(n: int) -> dict[str, Address]:
    return {UUIDS[i]: Address("127.0.0.1", 5701 + i) for i in range(n)}


def test_nothing_happens_until_the_unreachable_set_has_been_stable_long_enough() -> None:
    assert keep_majority(voters(5), frozenset(), 100.0, 10.0).verdict is Verdict.WAIT
    far = frozenset(UUIDS[3:5])
    assert keep_majority(voters(5), far, 9.9, 10.0).verdict is Verdict.WAIT
    assert keep_majority(voters(5), far, 10.0, 10.0).verdict is Verdict.DOWN_UNREACHABLE


def test_the_minority_downs_itself_and_says_how_many_it_reached() -> None:
    decision = keep_majority(voters(5), frozenset(UUIDS[:3]), 10.0, 10.0)
    assert decision.verdict is Verdict.DOWN_SELF
    assert (decision.reachable_count, decision.total) == (2, 5)


def test_a_tie_keeps_the_side_with_the_lowest_address() -> None:
    with_lowest = keep_majority(voters(4), frozenset(UUIDS[2:4]), 10.0, 10.0)
    without_lowest = keep_majority(voters(4), frozenset(UUIDS[:2]), 10.0, 10.0)
    assert with_lowest.verdict is Verdict.DOWN_UNREACHABLE
    assert without_lowest.verdict is Verdict.DOWN_SELF


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 7), data=st.data())
def test_at_most_one_side_of_any_partition_survives(n: int, data: st.DataObject) -> None:
    everyone = voters(n)
    side = frozenset(data.draw(st.sets(st.sampled_from(list(everyone)))))
    other = frozenset(everyone) - side
    survivors = [
        group
        for group, unreachable in ((side, other), (other, side))
        if group
        and unreachable
        and keep_majority(everyone, unreachable, 10.0, 10.0).verdict is Verdict.DOWN_UNREACHABLE
    ]
    assert len(survivors) <= 1


def test_voters_join_a_stale_converged_view_with_the_current_members() -> None:
    state = converged_cluster(5)
    stale = {UUIDS[0]: Address("10.0.0.1", 5701), "long-gone": Address("10.0.0.9", 1)}
    state = state.set_status(UUIDS[4], MemberStatus.LEAVING, by=UUIDS[0])
    state = state.set_status(UUIDS[4], MemberStatus.EXITING, by=UUIDS[0])
    counted = voting_members(state, stale)
    assert set(counted) == {*UUIDS[:4], "long-gone"}  # EXITING does not vote
    assert voting_members(state, {}) == {u: a for u, a in counted.items() if u != "long-gone"}


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


def test_downing_skips_members_that_are_gone_or_already_down() -> None:
    state = converged_cluster(4).set_status(UUIDS[2], MemberStatus.DOWN, by=UUIDS[0])
    pending = frozenset({UUIDS[1], UUIDS[2], "no-such-member"})

    downed = down_members(state, pending, by=UUIDS[0])

    assert {m.uuid for m in downed.members if m.status is MemberStatus.DOWN} == set(UUIDS[1:3])
    assert down_members(state, pending, by="no-such-member") is state
