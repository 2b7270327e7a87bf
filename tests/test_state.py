"""Example-based tests of the membership protocol core (messages/membership/state.py)."""

from __future__ import annotations

import msgspec
import pytest

from messages import (
    Address,
    Causality,
    LeaderChanged,
    Member,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberStatus,
    MemberUnreachable,
    MemberUp,
    VectorClock,
)
from messages.membership.changes import cluster_state, diff
from messages.membership.leader import leader_actions, prune_tombstones
from messages.membership.publication import follow, shares_history
from messages.membership.state import MembershipState, ReachabilityRow, merge
from messages.testing.simulator import converged_cluster

JOINING = MemberStatus.JOINING
UP = MemberStatus.UP
LEAVING = MemberStatus.LEAVING
EXITING = MemberStatus.EXITING
DOWN = MemberStatus.DOWN
REMOVED = MemberStatus.REMOVED

# converged_cluster(n): uuids member-00000.. at 10.0.0.1:5701.., all UP, member-00000 leads.
A, B, C, D = (f"member-{i:05d}" for i in range(4))


def joiner(uuid: str, port: int, host: str = "10.0.0.1") -> Member:
    return Member.create(Address(host, port), member_uuid=uuid)


def status_of(state: MembershipState, uuid: str) -> MemberStatus:
    member = state.member(uuid)
    assert member is not None
    return member.status


def all_seen(state: MembershipState) -> MembershipState:
    return msgspec.structs.replace(state, seen=frozenset(m.uuid for m in state.members))


# Initial state, lone seed, leader


def test_initial_state_holds_only_self_joining() -> None:
    me = joiner("me", 5701)
    state = MembershipState.initial(me)
    assert state.members == (me,)
    assert state.version == VectorClock({"me": 1})
    assert state.seen == frozenset({"me"})
    assert state.tombstones == ()
    assert state.reachability == ()


def test_initial_rejects_bad_input() -> None:
    with pytest.raises(TypeError, match="Member"):
        MembershipState.initial("me")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JOINING"):
        MembershipState.initial(joiner("me", 5701).with_status(UP, 1))


def test_lone_seed_promotes_itself() -> None:
    state = MembershipState.initial(joiner("seed", 5701))
    leader = state.leader()
    assert leader is not None
    assert leader.uuid == "seed"
    assert state.is_converged()
    promoted = leader_actions(state, "seed", now=1.0)
    assert promoted.member("seed") == joiner("seed", 5701).with_status(UP, 1)
    assert promoted.version == VectorClock({"seed": 2})
    assert promoted.seen == frozenset({"seed"})


def test_leader_is_first_reachable_up_or_leaving_member_by_address() -> None:
    state = converged_cluster(3)
    assert state.leader() == state.member(A)
    state = state.set_reachability(C, frozenset({A}))
    assert state.leader() == state.member(B)
    state = state.set_status(B, LEAVING, by=B)
    assert state.leader() == state.member(B)


def test_leader_prefers_up_member_over_lower_joining_one() -> None:
    state = converged_cluster(2, base_port=6000).add_joining(joiner("low", 5000), by=A)
    assert state.leader() == state.member(A)


def test_leader_falls_back_to_lowest_reachable_joining_member() -> None:
    state = MembershipState.initial(joiner("b", 5702)).add_joining(joiner("a", 5701), by="b")
    leader = state.leader()
    assert leader is not None
    assert leader.uuid == "a"
    assert MembershipState().leader() is None


def test_member_lookups() -> None:
    state = converged_cluster(2)
    assert state.member(B) == state.members[1]
    assert state.member("nobody") is None
    assert state.member_at(Address("10.0.0.1", 5702)) == state.members[1]
    assert state.member_at(Address("10.0.0.9", 5702)) is None


# Lifecycle moves


def test_local_change_increments_own_entry_and_resets_seen() -> None:
    state = converged_cluster(3)
    moved = state.set_status(B, LEAVING, by=B)
    assert moved.version == state.version.increment(B)
    assert moved.seen == frozenset({B})
    assert state.version == converged_cluster(3).version  # the old clock is untouched


def test_lifecycle_forward_moves_keep_up_number() -> None:
    state = converged_cluster(2).add_joining(joiner("new", 5800), by=A)
    state = state.set_status("new", UP, by=A)
    assert state.member("new") == joiner("new", 5800).with_status(UP, 3)
    state = state.set_status("new", LEAVING, by="new")
    state = state.set_status("new", EXITING, by=A)
    state = state.set_status("new", DOWN, by=A)
    assert state.member("new") == joiner("new", 5800).with_status(DOWN, 3)


@pytest.mark.parametrize("status", [JOINING, UP, LEAVING, EXITING])
def test_any_live_status_can_be_downed(status: MemberStatus) -> None:
    state = converged_cluster(2).add_joining(joiner("x", 5800), by=A)
    for step in (UP, LEAVING, EXITING)[: int(status)]:
        state = state.set_status("x", step, by=A)
    assert status_of(state, "x") is status
    assert status_of(state.set_status("x", DOWN, by=A), "x") is DOWN


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ((UP,), JOINING),
        ((LEAVING,), UP),
        ((LEAVING, EXITING), LEAVING),
        ((DOWN,), UP),
        ((DOWN,), EXITING),
        ((), EXITING),
    ],
)
def test_backward_or_skipping_moves_raise(
    start: tuple[MemberStatus, ...], target: MemberStatus
) -> None:
    state = converged_cluster(2)
    for step in start:
        state = state.set_status(B, step, by=A)
    with pytest.raises(ValueError, match=f"Cannot move member {B} from .* to {target.name}"):
        state.set_status(B, target, by=A)


def test_set_status_rejects_removed_unknown_and_non_members() -> None:
    state = converged_cluster(2)
    with pytest.raises(ValueError, match="leader_actions"):
        state.set_status(B, REMOVED, by=A)
    with pytest.raises(ValueError, match="'ghost' is not a member"):
        state.set_status("ghost", DOWN, by=A)
    with pytest.raises(ValueError, match="'ghost' is not a member"):
        state.set_status(B, DOWN, by="ghost")
    with pytest.raises(TypeError, match="MemberStatus"):
        state.set_status(B, 4, by=A)  # type: ignore[arg-type]


def test_set_status_to_the_same_status_is_a_no_op() -> None:
    state = converged_cluster(2)
    assert state.set_status(B, UP, by=A) is state


# Joining and restarts


def test_add_joining_inserts_in_address_order() -> None:
    state = converged_cluster(2, base_port=5701).add_joining(joiner("mid", 5701, "10.0.0.0"), by=A)
    assert [m.uuid for m in state.members] == ["mid", A, B]
    assert state.member("mid") == joiner("mid", 5701, "10.0.0.0")
    assert state.version == converged_cluster(2).version.increment(A)


def test_add_joining_is_a_no_op_for_a_present_member() -> None:
    state = converged_cluster(2).add_joining(joiner("x", 5800), by=A)
    assert state.add_joining(joiner("x", 5800), by=B) is state


def test_add_joining_rejects_a_member_that_is_not_joining() -> None:
    with pytest.raises(ValueError, match="JOINING"):
        converged_cluster(1).add_joining(joiner("x", 5800).with_status(UP, 4), by=A)


def test_restart_at_same_address_downs_the_old_incarnation_in_the_same_step() -> None:
    state = converged_cluster(3)
    restarted = state.add_joining(joiner("b2", 5702), by=A)
    assert status_of(restarted, B) is DOWN
    assert status_of(restarted, "b2") is JOINING
    assert restarted.version == state.version.increment(A)
    assert restarted.member_at(Address("10.0.0.1", 5702)) == restarted.member("b2")
    # The leader removes the downed incarnation at the next convergence and promotes the new one.
    after = leader_actions(all_seen(restarted), A, now=5.0)
    assert after.member(B) is None
    assert after.is_tombstoned(B)
    assert status_of(after, "b2") is UP


def test_removed_member_never_rejoins_with_its_uuid() -> None:
    state = all_seen(converged_cluster(3).set_status(C, DOWN, by=A))
    removed = leader_actions(state, A, now=1.0)
    assert removed.is_tombstoned(C)
    assert removed.add_joining(joiner(C, 5703), by=A) is removed


# Reachability


def test_set_reachability_versions_the_observer_row() -> None:
    state = converged_cluster(3)
    marked = state.set_reachability(B, frozenset({C}))
    assert marked.reachability == (ReachabilityRow(B, 1, frozenset({C})),)
    assert marked.version == state.version.increment(B)
    assert marked.unreachable() == frozenset({C})
    cleared = marked.set_reachability(B, frozenset())
    assert cleared.reachability == (ReachabilityRow(B, 2, frozenset()),)
    assert cleared.unreachable() == frozenset()
    assert cleared.set_reachability(B, set()) is cleared


def test_set_reachability_rejects_bad_input() -> None:
    state = converged_cluster(2)
    with pytest.raises(TypeError, match="set of member uuids"):
        state.set_reachability(A, B)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot mark itself"):
        state.set_reachability(A, frozenset({A}))
    with pytest.raises(ValueError, match="not a member"):
        state.set_reachability("ghost", frozenset({A}))


def test_unreachable_counts_only_member_observers_and_member_subjects() -> None:
    state = msgspec.structs.replace(
        converged_cluster(3),
        reachability=(
            ReachabilityRow(A, 1, frozenset({"gone"})),
            ReachabilityRow(B, 1, frozenset({C})),
            ReachabilityRow("stranger", 4, frozenset({A})),
        ),
    )
    assert state.unreachable() == frozenset({C})


# Convergence


def test_convergence_needs_every_up_and_leaving_member_to_have_seen() -> None:
    state = converged_cluster(3)
    assert state.is_converged()
    changed = state.set_status(C, LEAVING, by=C)
    assert not changed.is_converged()
    assert not changed.seen_by(A).is_converged()
    assert changed.seen_by(A).seen_by(B).is_converged()


def test_joining_members_need_not_have_seen() -> None:
    state = all_seen(converged_cluster(2)).add_joining(joiner("x", 5800), by=A).seen_by(B)
    assert state.seen == frozenset({A, B})
    assert state.is_converged()


def test_unreachable_members_block_convergence_until_down_or_exiting() -> None:
    state = all_seen(converged_cluster(3).set_reachability(A, frozenset({C})))
    assert not state.is_converged()
    assert all_seen(state.set_status(C, DOWN, by=A)).is_converged()
    exiting = state.set_status(C, LEAVING, by=C).set_status(C, EXITING, by=A)
    assert all_seen(exiting).is_converged()


def test_seen_by_adds_a_member_and_keeps_the_version() -> None:
    state = converged_cluster(3).set_status(C, LEAVING, by=C)
    seen = state.seen_by(A)
    assert seen.seen == frozenset({A, C})
    assert seen.version == state.version
    assert seen.seen_by(A) is seen
    assert seen.seen_by("stranger") is seen


# Leader actions


def test_leader_actions_wait_for_convergence() -> None:
    state = converged_cluster(3).add_joining(joiner("x", 5800), by=B)
    assert not state.is_converged()
    assert leader_actions(state, A, now=1.0) is state
    assert status_of(leader_actions(all_seen(state), A, now=1.0), "x") is UP


def test_only_the_leader_acts() -> None:
    state = all_seen(converged_cluster(3).add_joining(joiner("x", 5800), by=B))
    assert leader_actions(state, B, now=1.0) is state


def test_leader_actions_with_nothing_to_do_return_the_same_state() -> None:
    state = converged_cluster(3)
    assert leader_actions(state, A, now=1.0) is state


def test_leader_promotes_joining_members_in_address_order() -> None:
    state = converged_cluster(2)
    for uuid, port in (("z", 5803), ("y", 5802), ("x", 5801)):
        state = state.add_joining(joiner(uuid, port), by=B)
    promoted = leader_actions(all_seen(state), A, now=1.0)
    assert [(m.uuid, m.status, m.up_number) for m in promoted.members] == [
        (A, UP, 1),
        (B, UP, 2),
        ("x", UP, 3),
        ("y", UP, 4),
        ("z", UP, 5),
    ]
    assert promoted.version == state.version.increment(A)
    assert promoted.seen == frozenset({A})


def test_graceful_leave_goes_leaving_exiting_removed() -> None:
    state = converged_cluster(3).set_status(C, LEAVING, by=C)
    exiting = leader_actions(all_seen(state), A, now=1.0)
    assert status_of(exiting, C) is EXITING
    assert exiting.member(C) == converged_cluster(3).members[2].with_status(EXITING)
    removed = leader_actions(all_seen(exiting), A, now=2.0)
    assert removed.member(C) is None
    assert removed.tombstones == ((C, 2.0),)


def test_removal_prunes_seen_version_and_reachability() -> None:
    state = (
        converged_cluster(4)
        .set_reachability(C, frozenset({D}))
        .set_reachability(B, frozenset({C, D}))
    )
    state = state.set_status(C, DOWN, by=A).set_status(D, DOWN, by=A)
    before = all_seen(state)
    removed = leader_actions(before, A, now=7.5)
    assert [m.uuid for m in removed.members] == [A, B]
    assert removed.tombstones == ((C, 7.5), (D, 7.5))
    assert removed.reachability == (ReachabilityRow(B, 1, frozenset()),)
    assert C not in removed.version.timestamps
    assert removed.version == VectorClock({A: before.version.get(A) + 1, B: before.version.get(B)})
    assert removed.seen == frozenset({A})
    assert removed.version.compare(before.version) is Causality.CONCURRENT
    assert removed.is_converged() is False  # B has not seen it yet
    assert removed.seen_by(B).is_converged()


def test_a_peer_receiving_a_removal_adopts_it_and_keeps_the_seen_set() -> None:
    before = all_seen(converged_cluster(3).set_status(C, LEAVING, by=C).set_status(C, DOWN, by=A))
    assert C in before.version.timestamps
    removed = leader_actions(before, A, now=1.0)
    at_b, causality = before.receive(removed, B)
    assert causality is Causality.CONCURRENT
    assert at_b.member(C) is None
    assert at_b.version == removed.version
    assert at_b.seen == frozenset({A, B})
    assert at_b.is_converged()


# Receive


def test_receive_after_adopts_the_remote_state() -> None:
    ours = converged_cluster(3)
    remote = ours.set_status(C, LEAVING, by=C)
    received, causality = ours.receive(remote, B)
    assert causality is Causality.AFTER
    assert received.members is remote.members
    assert received.version == remote.version
    assert received.seen == frozenset({B, C})


def test_receive_before_keeps_ours() -> None:
    ours = converged_cluster(3).set_status(C, LEAVING, by=C).seen_by(B)
    received, causality = ours.receive(converged_cluster(3), B)
    assert causality is Causality.BEFORE
    assert received is ours


def test_receive_same_unions_seen() -> None:
    changed = converged_cluster(3).set_status(C, LEAVING, by=C)
    ours = changed.seen_by(B)
    received, causality = ours.receive(changed.seen_by(A), B)
    assert causality is Causality.SAME
    assert received.seen == frozenset({A, B, C})
    assert received.receive(changed, B)[0] is received


def test_receive_concurrent_merges_and_marks_self_seen() -> None:
    base = converged_cluster(3)
    ours = base.set_status(C, LEAVING, by=C)
    remote = base.add_joining(joiner("x", 5800), by=B)
    received, causality = ours.receive(remote, A)
    assert causality is Causality.CONCURRENT
    assert status_of(received, C) is LEAVING
    assert status_of(received, "x") is JOINING
    assert received.version == ours.version.merge(remote.version)
    assert received.seen == frozenset({A})


def test_receive_rejects_a_non_state() -> None:
    with pytest.raises(TypeError, match="MembershipState"):
        converged_cluster(1).receive({"members": []}, A)  # type: ignore[arg-type]


def test_concurrent_merge_with_a_colliding_version_becomes_a_new_version() -> None:
    # C adds a joiner and is removed by the leader, who never saw that join. A peer merging both
    # ends up with the leader's clock plus the joiner: it must not pass for the leader's state.
    base = all_seen(converged_cluster(3).set_status(C, DOWN, by=A))
    with_joiner = base.add_joining(joiner("x", 5800), by=C)
    removed = leader_actions(base, A, now=1.0)
    merged, causality = with_joiner.receive(removed, B)
    assert causality is Causality.CONCURRENT
    assert status_of(merged, "x") is JOINING
    assert merged.member(C) is None
    assert merged.version == removed.version.increment(B)
    at_leader, back = removed.receive(merged, A)
    assert back is Causality.AFTER
    assert status_of(at_leader, "x") is JOINING


def test_merging_two_sides_that_removed_each_other_gets_a_fresh_version() -> None:
    # A and B each made changes (clock entries), then each side downed and removed the other.
    # The plain merge prunes both entries to an empty clock, which every stale state would
    # dominate; the merging member must bump its own entry instead.
    base = converged_cluster(2).add_joining(joiner("x", 5800), by=A)
    base = leader_actions(all_seen(base.add_joining(joiner("y", 5801), by=B)), A, now=1.0)
    side_a = leader_actions(all_seen(base.set_status(B, DOWN, by=A)), A, now=2.0)
    side_b = leader_actions(all_seen(base.set_status(A, DOWN, by=B)), B, now=2.0)
    assert merge(side_a, side_b).version == VectorClock()
    at_x, causality = side_a.receive(side_b, "x")
    assert causality is Causality.CONCURRENT
    assert [m.uuid for m in at_x.members] == ["x", "y"]
    assert at_x.version == VectorClock({"x": 1})
    at_y, back = side_b.receive(at_x, "y")
    assert back is Causality.CONCURRENT
    assert at_y.members == at_x.members
    assert at_y.version == at_x.version


# Merge


def test_merge_keeps_the_most_advanced_status_and_the_older_up_number() -> None:
    base = converged_cluster(3)
    left = base.set_status(B, LEAVING, by=B)
    downed = base.set_status(B, DOWN, by=A)
    assert status_of(merge(left, downed), B) is DOWN
    x = joiner("x", 5800)
    one = msgspec.structs.replace(base, members=(*base.members, x.with_status(UP, 7)))
    other = msgspec.structs.replace(base, members=(*base.members, x.with_status(UP, 4)))
    assert merge(one, other).member("x") == x.with_status(UP, 4)
    joining = msgspec.structs.replace(base, members=(*base.members, x))
    assert merge(joining, one).member("x") == x.with_status(UP, 7)
    exiting = msgspec.structs.replace(base, members=(*base.members, x.with_status(EXITING)))
    assert merge(exiting, other).member("x") == x.with_status(EXITING, 4)


def test_merge_keeps_a_member_known_to_one_side_only() -> None:
    base = converged_cluster(2)
    joined = base.add_joining(joiner("x", 5800), by=A)
    downed = joined.set_status("x", DOWN, by=A)
    assert status_of(merge(joined, base), "x") is JOINING
    assert status_of(merge(base, downed), "x") is DOWN


def test_merge_stays_associative_with_a_down_member_known_to_some_sides() -> None:
    # Akka drops one-sided DOWN/EXITING members; that rule is not associative. Ours is.
    base = converged_cluster(2)
    joined = base.add_joining(joiner("x", 5800), by=A)
    down, up, unaware = (
        joined.set_status("x", DOWN, by=A),
        joined,
        base.set_status(B, LEAVING, by=B),
    )
    assert merge(merge(down, up), unaware) == merge(down, merge(up, unaware))
    assert status_of(merge(merge(down, up), unaware), "x") is DOWN


def test_merge_never_resurrects_a_tombstoned_member() -> None:
    old = all_seen(converged_cluster(3).set_status(C, DOWN, by=A))
    removed = leader_actions(old, A, now=1.0)
    stale = converged_cluster(3).set_reachability(C, frozenset({A})).set_status(B, LEAVING, by=C)
    for other in (old, stale, converged_cluster(3)):
        for merged in (merge(removed, other), merge(other, removed)):
            assert merged.member(C) is None
            assert merged.is_tombstoned(C)
            assert C not in merged.version.timestamps
            assert all(row.observer != C for row in merged.reachability)
        assert other.receive(removed, B)[0].member(C) is None
        assert removed.receive(other, A)[0].member(C) is None


def test_merge_takes_each_observers_newer_row_and_drops_tombstoned_observers() -> None:
    base = converged_cluster(3)
    newer = base.set_reachability(B, frozenset({C})).set_reachability(B, frozenset())
    older = base.set_reachability(B, frozenset({C})).set_reachability(A, frozenset({C}))
    merged = merge(newer, older)
    assert merged.reachability == (
        ReachabilityRow(A, 1, frozenset({C})),
        ReachabilityRow(B, 2, frozenset()),
    )
    assert merged.seen == frozenset()
    gone = msgspec.structs.replace(merged, tombstones=((A, 1.0),))
    assert merge(gone, older).reachability == (ReachabilityRow(B, 2, frozenset()),)


def test_merge_unites_tombstones_keeping_the_latest_time() -> None:
    base = converged_cluster(1)
    one = msgspec.structs.replace(base, tombstones=(("p", 1.0), ("q", 5.0)))
    other = msgspec.structs.replace(base, tombstones=(("q", 3.0), ("r", 2.0)))
    assert merge(one, other).tombstones == (("p", 1.0), ("q", 5.0), ("r", 2.0))


# Events


def test_diff_emits_removals_first_then_member_events_then_reachability_then_leader() -> None:
    old = converged_cluster(4).set_status(A, DOWN, by=B).add_joining(joiner("x", 5800), by=B)
    old = all_seen(old.set_status(D, LEAVING, by=D).set_status(C, DOWN, by=B))
    new = leader_actions(old, B, now=1.0).set_reachability(D, frozenset({B}))
    members = {m.uuid: m for m in new.members}
    assert diff(old, new, 9) == (
        MemberRemoved(9, old.members[0].with_status(REMOVED), previous_status=DOWN),
        MemberRemoved(9, old.members[2].with_status(REMOVED), previous_status=DOWN),
        MemberExited(9, members[D]),
        MemberUp(9, members["x"]),
        MemberUnreachable(9, members[B]),
        LeaderChanged(9, Address("10.0.0.1", 5800)),
    )


def test_diff_from_empty_state_reports_joined_up_left_downed_and_unreachable() -> None:
    state = converged_cluster(4).add_joining(joiner("x", 5800), by=A)
    state = state.set_status(C, LEAVING, by=C).set_status(D, DOWN, by=A)
    state = state.set_reachability(A, frozenset({B}))
    members = {m.uuid: m for m in state.members}
    assert diff(MembershipState(), state, 1) == (
        MemberUp(1, members[A]),
        MemberUp(1, members[B]),
        MemberUp(1, members[C]),
        MemberLeft(1, members[C]),
        MemberUp(1, members[D]),
        MemberDowned(1, members[D]),
        MemberJoined(1, members["x"]),
        MemberUnreachable(1, members[B]),
        LeaderChanged(1, Address("10.0.0.1", 5701)),
    )


def test_diff_reports_reachable_again_and_nothing_for_an_unchanged_state() -> None:
    state = converged_cluster(3)
    marked = state.set_reachability(A, frozenset({C}))
    assert diff(state, marked, 2) == (MemberUnreachable(2, state.members[2]),)
    assert diff(marked, marked.set_reachability(A, frozenset()), 3) == (
        MemberReachable(3, state.members[2]),
    )
    assert diff(state, state.seen_by(A), 4) == ()


def test_cluster_state_orders_by_age_then_joining_by_address() -> None:
    state = converged_cluster(3, base_port=6000)
    state = state.add_joining(joiner("late", 7000), by=A).add_joining(joiner("early", 5000), by=A)
    state = state.set_status("late", UP, by=A).set_reachability(A, frozenset({"early"}))
    snapshot = cluster_state(state, 12)
    assert snapshot.version == 12
    assert [m.uuid for m in snapshot.members] == [A, B, C, "late", "early"]
    assert [m.uuid for m in snapshot.up_members] == [A, B, C, "late"]
    assert snapshot.unreachable == frozenset({"early"})
    assert snapshot.leader == Address("10.0.0.1", 6000)


# Tombstone pruning and the wire


def test_prune_tombstones_forgets_only_old_ones() -> None:
    state = msgspec.structs.replace(converged_cluster(1), tombstones=(("p", 10.0), ("q", 50.0)))
    assert prune_tombstones(state, now=60.0, ttl=100.0) is state
    pruned = prune_tombstones(state, now=115.0, ttl=100.0)
    assert pruned.tombstones == (("q", 50.0),)
    assert not pruned.is_tombstoned("p")
    assert pruned.is_tombstoned("q")
    with pytest.raises(ValueError, match="negative"):
        prune_tombstones(state, now=1.0, ttl=-1.0)


def test_state_round_trips_through_msgpack() -> None:
    state = all_seen(converged_cluster(3).set_status(C, DOWN, by=A))
    state = leader_actions(state, A, now=3.5).set_reachability(B, frozenset({A}))
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=MembershipState)
    assert decoded == state
    assert decoded.unreachable() == frozenset({A})


# A client following its member


def test_a_client_in_step_takes_each_push_as_it_is() -> None:
    view = converged_cluster(1)
    lone_exit = MembershipState(tombstones=((A, 1.0),))  # its clock is empty: BEFORE any other

    followed, in_step = follow(view, lone_exit, in_step=True)

    assert (followed, in_step) == (lone_exit, True)


def test_a_client_takes_a_state_of_another_incarnation_as_the_truth() -> None:
    view = converged_cluster(3)
    restarted = MembershipState.initial(joiner("new-0", 5701))
    assert not shares_history(view, restarted)
    assert shares_history(view, view.set_status(C, LEAVING, by=C))
    assert shares_history(view, MembershipState(tombstones=((A, 1.0),)))

    assert follow(view, restarted, in_step=False) == (restarted, True)
    assert follow(MembershipState(), view, in_step=False) == (view, True)


def test_a_client_reconnecting_within_its_cluster_never_goes_back() -> None:
    view = converged_cluster(3).set_status(C, LEAVING, by=C)  # what the lost member had pushed
    behind = converged_cluster(3)
    ahead = view.set_status(B, LEAVING, by=B)
    aside = behind.set_status(B, LEAVING, by=B)  # a change the client has not seen, without ours

    assert follow(view, behind, in_step=False) == (view, False)  # wait for it to catch up
    assert follow(view, ahead, in_step=False) == (ahead, True)
    merged, in_step = follow(view, aside, in_step=False)
    assert (status_of(merged, B), status_of(merged, C), in_step) == (LEAVING, LEAVING, False)


def test_a_state_of_the_same_version_with_other_tombstone_times_joins_them() -> None:
    """Pruning can leave two copies of one version that removed a member at different times
    (hypothesis found gossip that never settled on them): receiving the other copy joins the
    tombstones, so every copy ends the same."""
    base = converged_cluster(2)
    early = base.replaced(tombstones=(("gone", 27.0),))
    late = base.replaced(tombstones=(("gone", 34.0),))
    received, causality = early.receive(late, base.members[0].uuid)
    assert causality is Causality.CONCURRENT  # the versions cannot tell them apart: merged
    assert received.tombstones == (("gone", 34.0),)
    back, _ = late.receive(received, base.members[1].uuid)
    assert back.tombstones == received.tombstones
