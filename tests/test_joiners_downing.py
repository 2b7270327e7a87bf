"""Decision-level cases: unreachable JOINING members and keep-majority (issue 18).

At 200 members a join storm under CPU load made healthy majorities down themselves: every UP
member reachable, but more JOINING members unreachable than UP ones, and the check against
changes in flight counted each of them on the other side (it may be UP there). A JOINING member
is UP elsewhere only if a leader moved it; with no counted member unreachable that leader is
this side's own, whose view holds its move (messages/membership/downing.py).
"""

from __future__ import annotations

from messages import Member, MemberStatus
from messages.membership.downing import Verdict, keep_majority
from messages.membership.leader import leader_actions
from messages.membership.state import MembershipState
from messages.testing.simulator import converged_cluster

UUIDS = [f"member-{i:05d}" for i in range(7)]  # converged_cluster's, at 10.0.0.1:5701...


def with_joiners(state: MembershipState, count: int) -> tuple[MembershipState, list[str]]:
    """``state`` with ``count`` JOINING members (at higher addresses), added by the first."""
    joiners = []
    for port in range(5800, 5800 + count):
        joiner = Member.create(f"10.0.0.1:{port}", member_uuid=f"joiner-{port}")
        state = state.add_joining(joiner, by=UUIDS[0])
        joiners.append(joiner.uuid)
    return state, joiners


def marked(state: MembershipState, observer: str, subjects: list[str]) -> MembershipState:
    return state.set_reachability(observer, frozenset(subjects))


def verdict(state: MembershipState, me: str, stable_for: float = 10.0) -> Verdict:
    return keep_majority(state, me, stable_for, down_after=10.0).verdict


def test_a_majority_with_every_up_member_reachable_keeps_and_downs_the_slow_joiners() -> None:
    """5 UP members, all reachable, and 6 joiners unreachable: before, 5 against 6 with the
    changes in flight, and every UP member downed itself. Now the side keeps, and its leader
    downs the joiners (Pekko's downable set includes them): they block convergence."""
    state, joiners = with_joiners(converged_cluster(5), 6)
    state = marked(state, UUIDS[1], joiners)
    for me in UUIDS[:5]:
        assert verdict(state, me) is Verdict.DOWN_UNREACHABLE
    decision = keep_majority(state, UUIDS[0], 10.0, down_after=10.0)
    assert decision.unreachable == frozenset(joiners)
    assert (decision.reachable_count, decision.total) == (5, 5)


def test_a_joiner_holding_the_same_table_downs_itself() -> None:
    state, joiners = with_joiners(converged_cluster(5), 6)
    state = marked(state, UUIDS[1], joiners)
    assert verdict(state, joiners[0]) is Verdict.DOWN_SELF


def test_joiners_still_count_against_this_side_when_a_counted_member_is_unreachable() -> None:
    """E is unreachable as well: a leader across the cut may have moved the joiners to UP, so
    they count there (4 UP here against E and 6 joiners)."""
    state, joiners = with_joiners(converged_cluster(5), 6)
    state = marked(state, UUIDS[1], [*joiners, UUIDS[4]])
    assert verdict(state, UUIDS[0]) is Verdict.DOWN_SELF
    few, joiners = with_joiners(converged_cluster(5), 2)  # 4 here against E and 2: keeps
    few = marked(few, UUIDS[1], [*joiners, UUIDS[4]])
    assert verdict(few, UUIDS[0]) is Verdict.DOWN_UNREACHABLE


def test_the_leader_that_moved_the_joiners_counts_them_and_is_the_one_that_acts() -> None:
    """A (the leader) moved 3 joiners to UP at convergence; a cut then parts them from A and B,
    which has not seen the move. B keeps in its own view, but B is not its view's leader: A is,
    and A's view counts the 3 as UP and unreachable (2 against 3), so A downs itself, and no
    member of this side downs the 3, which keep on the other side. B then finds A gone (a
    counted member unreachable), counts the joiners again and downs itself."""
    before, joiners = with_joiners(converged_cluster(2), 3)
    before = before.with_seen(frozenset(UUIDS[:2]))
    moved = leader_actions(before, UUIDS[0], now=1.0)
    assert {m.uuid for m in moved.members if m.status is MemberStatus.UP} >= set(joiners)
    leader_view = marked(moved, UUIDS[0], joiners)
    other_view = marked(before, UUIDS[1], joiners)
    assert verdict(leader_view, UUIDS[0]) is Verdict.DOWN_SELF
    assert verdict(other_view, UUIDS[1]) is Verdict.DOWN_UNREACHABLE
    leader = other_view.leader()
    assert leader is not None
    assert leader.uuid == UUIDS[0]
    for joiner in joiners:  # each moved joiner, holding the move, keeps on its side
        far = marked(moved, joiner, UUIDS[:2])
        assert verdict(far, joiner) is Verdict.DOWN_UNREACHABLE
    a_gone = marked(other_view, UUIDS[1], [*joiners, UUIDS[0]])
    assert verdict(a_gone, UUIDS[1]) is Verdict.DOWN_SELF


def test_a_joiner_unreachable_for_less_than_the_window_is_not_downed() -> None:
    """The transient case: a joiner is unreachable for a while (a slow start under load), then
    answers again before ``down_after``. Nobody decides while the window runs, and once its
    observer withdraws the accusation there is nothing left to decide: it stays."""
    state, joiners = with_joiners(converged_cluster(5), 1)
    accused = marked(state, UUIDS[1], joiners)
    for me in [*UUIDS[:5], *joiners]:
        assert verdict(accused, me, stable_for=9.9) is Verdict.WAIT
    healed = marked(accused, UUIDS[1], [])
    assert healed.unreachable() == frozenset()
    for me in [*UUIDS[:5], *joiners]:
        assert verdict(healed, me, stable_for=100.0) is Verdict.WAIT
