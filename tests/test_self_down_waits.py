"""Step-level cases: when a member in a minority waits before it downs itself (issue 16).

A member that hears from a member its own row accuses (a heartbeat, gossip, anything) may be
watching the cut heal: the far side's messages arrive before its own heartbeats are answered
and its row is refreshed. It does not down itself just then, but only for an
``acceptable_heartbeat_pause`` past its stable window (messages/membership/detection.py).
"""

from __future__ import annotations

import dataclasses

import msgspec

from messages.member import MemberStatus
from messages.membership.downing import (
    Verdict,
    keep_majority,
    keeps_on_a_reading_set_aside,
    no_side_keeps,
)
from messages.membership.effects import GossipTick, Inbound
from messages.membership.node import NodeState
from messages.membership.protocol import Heartbeat
from messages.membership.publication import Publication
from messages.membership.state import MembershipState
from messages.membership.step import step
from messages.membership.verdicts import readings_set_aside
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.handshake import Identity, Role

SETTINGS = Settings.lan()
UUIDS = [f"member-{i:05d}" for i in range(5)]  # converged_cluster's


def minority_member(since: float = 0.0) -> NodeState:
    """A (the first of five) whose row accuses C, D and E since ``since``: 2 of 5 reachable.
    Its last step was at ``down_after`` (so no step below finds it was paused)."""
    state = converged_cluster(5).set_reachability(UUIDS[0], frozenset(UUIDS[2:]))
    node = NodeState.create(state.members[0], SETTINGS, seed=1)
    published, _ = Publication().publish(state)
    return dataclasses.replace(
        node,
        published=published,
        running=True,
        last_step=SETTINGS.down_after,
        pending_unreachable=frozenset(UUIDS[2:]),
        unreachable_since=since,
    )


def heartbeat_from(sender: str) -> Inbound:
    message = Heartbeat(from_uuid=sender, to_uuid=UUIDS[0], sequence=1)
    return Inbound(message, 9, "peer", Identity(sender, Role.MEMBER))


def downed_itself(node: NodeState) -> bool:
    return node.termination is not None


def test_a_minority_member_downs_itself_once_the_window_has_passed() -> None:
    node, _ = step(minority_member(), GossipTick(), SETTINGS.down_after + 0.5)
    assert downed_itself(node)


def test_it_waits_while_it_hears_from_a_member_it_accuses() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[3]), at - 0.3)
    assert node.heard_accused == {UUIDS[3]: at - 0.3}
    node, _ = step(node, GossipTick(), at)
    assert not downed_itself(node)


def test_a_member_it_does_not_accuse_is_no_reason_to_wait() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[1]), at - 0.3)
    assert node.heard_accused == {}
    node, _ = step(node, GossipTick(), at)
    assert downed_itself(node)


def test_the_wait_ends_with_the_heartbeat_interval_or_an_acceptable_pause_past_the_window() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[3]), at - 0.3)
    later, _ = step(node, GossipTick(), at - 0.3 + SETTINGS.heartbeat_interval + 0.1)
    assert downed_itself(later)  # heard too long ago
    overdue = SETTINGS.down_after + SETTINGS.acceptable_heartbeat_pause + 0.1
    still, _ = step(minority_member(), heartbeat_from(UUIDS[3]), overdue - 0.3)
    still, _ = step(still, GossipTick(), overdue)
    assert downed_itself(still)  # a one-way cut: it hears them, they never answer


# -- no side can keep: a self-down that protects nobody waits one more window ------------------


def no_majority_anywhere(crashed: frozenset[str], **status: MemberStatus) -> MembershipState:
    """A and B of five; A's and B's rows accuse C, D and E, of which ``crashed`` refused their
    dials (marked terminated: their processes are gone); ``status`` moves members first."""
    moved = {UUIDS["ABCDE".index(name)]: to for name, to in status.items()}
    state = converged_cluster(5)
    state = state.replaced(
        members=tuple(
            msgspec.structs.replace(m, status=moved[m.uuid]) if m.uuid in moved else m
            for m in state.members
        )
    )
    for observer in UUIDS[:2]:
        state = state.set_reachability(observer, frozenset(UUIDS[2:]), crashed)
    return state


def test_with_two_of_five_gone_the_third_cannot_keep_against_two() -> None:
    state = no_majority_anywhere(frozenset(UUIDS[2:4]))
    assert no_side_keeps(state, UUIDS[0], state.unreachable())
    decision = keep_majority(state, UUIDS[0], SETTINGS.down_after, SETTINGS.down_after)
    assert decision.verdict is Verdict.DOWN_SELF  # keep-majority itself is unchanged


def test_without_evidence_of_crashes_the_far_side_may_keep() -> None:
    state = no_majority_anywhere(frozenset())
    assert not no_side_keeps(state, UUIDS[0], state.unreachable())


def test_a_tie_goes_to_the_far_side_unless_this_side_holds_the_lowest_address() -> None:
    state = no_majority_anywhere(frozenset(UUIDS[2:3]))  # C gone: D and E against A and B
    assert no_side_keeps(state, UUIDS[0], state.unreachable())  # A is the lowest
    seen_from_d = converged_cluster(5)
    for observer in UUIDS[3:]:
        seen_from_d = seen_from_d.set_reachability(
            observer, frozenset(UUIDS[:3]), frozenset(UUIDS[2:3])
        )
    assert not no_side_keeps(seen_from_d, UUIDS[3], seen_from_d.unreachable())


def test_changes_in_flight_count_for_the_far_side() -> None:
    gone = frozenset(UUIDS[2:4])
    state = no_majority_anywhere(gone, B=MemberStatus.DOWN)  # B downed here: maybe UP there
    assert not no_side_keeps(state, UUIDS[0], state.unreachable())
    exiting = no_majority_anywhere(gone, E=MemberStatus.EXITING)  # maybe LEAVING there
    assert no_side_keeps(exiting, UUIDS[0], exiting.unreachable())
    # E may be UP over there, B not here: D and E against A
    joining = no_majority_anywhere(
        gone - {UUIDS[3]}, B=MemberStatus.JOINING, E=MemberStatus.JOINING
    )
    assert not no_side_keeps(joining, UUIDS[0], joining.unreachable())


def test_a_member_accused_itself_does_not_wait_on_it() -> None:
    state = no_majority_anywhere(frozenset(UUIDS[2:4]))
    accused = state.set_reachability(UUIDS[4], frozenset(UUIDS[1:2]))
    assert UUIDS[1] in accused.unreachable()
    assert not no_side_keeps(accused, UUIDS[1], accused.unreachable())


def test_a_member_whose_majority_is_gone_waits_one_more_window_then_downs_itself() -> None:
    state = no_majority_anywhere(frozenset(UUIDS[2:4]))
    node = dataclasses.replace(
        minority_member(), published=Publication().publish(state)[0], last_step=0.0
    )
    window = SETTINGS.down_after
    node, _ = step(node, GossipTick(), window + 0.5)
    assert not downed_itself(node)  # only E may be over there: 1 against A and B
    node, _ = step(node, GossipTick(), 2 * window - 0.5)
    assert not downed_itself(node)
    node, _ = step(node, GossipTick(), 2 * window + 0.1)
    assert downed_itself(node)  # the majority is gone for good: the cluster still ends


def accused_member() -> NodeState:
    """A (the first of five), accused by B, D and E, and B accused by C: A and B count
    unreachable, C, D and E keep. A's own row accuses nobody; every reading with the rows of
    the fewest members set aside counts A unreachable too (the fewest are A and B, or A and
    C), so no other wait applies."""
    state = converged_cluster(5)
    for observer in (1, 3, 4):
        state = state.set_reachability(UUIDS[observer], frozenset(UUIDS[:1]))
    state = state.set_reachability(UUIDS[2], frozenset(UUIDS[1:2]))
    node = dataclasses.replace(minority_member(), published=Publication().publish(state)[0])
    return dataclasses.replace(node, pending_unreachable=frozenset(UUIDS[:2]))


def test_it_waits_while_it_hears_from_a_member_that_accuses_it() -> None:
    at = SETTINGS.down_after + 0.5
    assert downed_itself(step(accused_member(), GossipTick(), at)[0])
    node, _ = step(accused_member(), heartbeat_from(UUIDS[1]), at - 0.3)
    assert node.heard_accused == {UUIDS[1]: at - 0.3}  # B's row, not A's, names the other
    node, _ = step(node, GossipTick(), at)
    assert not downed_itself(node)  # B hears it again: its next heartbeat tick withdraws
    overdue = SETTINGS.down_after + SETTINGS.acceptable_heartbeat_pause + 0.1
    still, _ = step(accused_member(), heartbeat_from(UUIDS[1]), overdue - 0.3)
    still, _ = step(still, GossipTick(), overdue)
    assert downed_itself(still)  # bounded as before


# -- a self-down that only rows a cover would set aside make lose waits one more window ---------


def rows(**accused: str) -> MembershipState:
    """Five members A..E (A the lowest address), each named observer's row accusing the
    members whose letters follow it: ``rows(A="BE")`` is A accusing B and E."""
    state = converged_cluster(5)
    for observer, subjects in accused.items():
        named = frozenset(UUIDS["ABCDE".index(s)] for s in subjects)
        state = state.set_reachability(UUIDS["ABCDE".index(observer)], named)
    return state


ONE_WAY_CUT = rows(A="BE", B="C", C="BE", D="BE", E="C")
"""Seed 822: A, C and D cannot reach B and E (B and E still hear them); B's and E's rows, frozen
when the receive-side filter began to drop their gossip, accuse C, deaf a few seconds before.
The fewest whose rows leave no accusation are B and E, but the minimum cover of the indirectly
connected is C alone, and the union leaves A, C and D two of five."""

FROZEN_ROW = rows(A="BDE", B="AD", C="AD", D="C", E="AD")
"""Seed 186 from E: everybody accuses A and D (cut off, about to down themselves), and D's row,
frozen since, accuses C. The cover of the C-D edge that would set D's row aside has no
witness (every member that stays accuses D), so the union counts C too: B, E two of five."""


def test_a_member_that_loses_only_on_rows_a_cover_sets_aside_keeps_on_that_reading() -> None:
    for state, me in ((ONE_WAY_CUT, UUIDS[0]), (ONE_WAY_CUT, UUIDS[3]), (FROZEN_ROW, UUIDS[4])):
        decision = keep_majority(state, me, SETTINGS.down_after, SETTINGS.down_after)
        assert decision.verdict is Verdict.DOWN_SELF  # keep-majority itself is unchanged
        assert keeps_on_a_reading_set_aside(state, me)
    assert frozenset(UUIDS[1:5:3]) in readings_set_aside(
        ONE_WAY_CUT.by_uuid, ONE_WAY_CUT.reachability
    )
    readings = readings_set_aside(FROZEN_ROW.by_uuid, FROZEN_ROW.reachability)
    assert frozenset(UUIDS[0:4:3]) in readings  # D's row aside: A and D unreachable


def test_a_member_a_reading_counts_unreachable_does_not_wait_on_it() -> None:
    for me in UUIDS[1:5:3]:  # B and E, whose own rows accuse C
        assert not keeps_on_a_reading_set_aside(ONE_WAY_CUT, me)
    assert not keeps_on_a_reading_set_aside(FROZEN_ROW, UUIDS[3])  # D, accused by all


def test_a_clean_minority_never_waits_on_it() -> None:
    minority = rows(A="CDE", B="CDE")
    for me in UUIDS[:2]:
        assert not keeps_on_a_reading_set_aside(minority, me)


def test_its_own_silences_count_against_it_on_every_reading() -> None:
    silent = frozenset(UUIDS[2:4])  # C and D silent to A, not confirmed yet
    assert not keeps_on_a_reading_set_aside(ONE_WAY_CUT, UUIDS[0], silent)


def test_it_waits_one_more_window_on_rows_a_cover_sets_aside_then_downs_itself() -> None:
    node = dataclasses.replace(
        minority_member(),
        published=Publication().publish(ONE_WAY_CUT)[0],
        last_step=0.0,
        pending_unreachable=frozenset(UUIDS[1:3]) | {UUIDS[4]},
    )
    window = SETTINGS.down_after
    node, _ = step(node, GossipTick(), window + 0.5)
    assert not downed_itself(node)  # B and E may be gone, or come back, meanwhile
    node, _ = step(node, GossipTick(), 2 * window - 0.5)
    assert not downed_itself(node)
    node, _ = step(node, GossipTick(), 2 * window + 0.1)
    assert downed_itself(node)  # bounded: then as before
