"""Decision-level cases: Pekko's SplitBrainResolverSpec "KeepMajority" block, and the research's
E1-E5 (docs/architecture.md, "Failure detection and downing").

Members A, B, C, ... are ``converged_cluster``'s, in address order (A is the lowest). A table is
the rows the deciding members hold: ``"A>B"`` is A marking B unreachable, and a side of a
partition marks every member outside it (every member watches every other at these sizes).
Each case asserts which members end up downed when every member of the deciding side acts on
that table: a member whose verdict is DOWN_SELF downs itself, the keeping leader downs the
others. Pekko's answer is beside ours. Pekko downs every indirectly connected member (an
observer that is also accused) and decides again on the rest, counting them reachable there.
Here the fewest of them whose removal leaves no accusation (a minimum vertex cover) are downed,
the highest addresses first on a tie, while each still has a witness (a member that stays and
neither accuses it nor is accused by it); else the plain union decides
(messages/membership/verdicts.py). A predicted self-downer that the others accuse is downed
alone.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from messages.address import Address
from messages.member import MemberStatus
from messages.membership.downing import Verdict, keep_majority
from messages.membership.state import MembershipState
from messages.membership.verdicts import fewest_to_down
from messages.testing.simulator import converged_cluster

LETTERS = "ABCDEFG"


def uuid(letter: str) -> str:
    return f"member-{LETTERS.index(letter):05d}"


def letter(member: str) -> str:
    return LETTERS[int(member.rsplit("-", 1)[1])]


def table(size: int, side: str, records: str) -> MembershipState:
    """A converged cluster of ``size`` whose members in ``side`` mark all others, plus the
    ``records`` (space-separated ``"A>B"``)."""
    everyone = LETTERS[:size]
    rows: dict[str, set[str]] = defaultdict(set)
    if side != everyone:
        for observer in side:
            rows[observer] |= set(everyone) - set(side)
    for record in records.split():
        observer, subject = record.split(">")
        rows[observer].add(subject)
    state = converged_cluster(size)
    for observer, subjects in sorted(rows.items()):
        state = state.set_reachability(uuid(observer), {uuid(s) for s in subjects})
    return state


def downed(state: MembershipState, deciders: str) -> str:
    """The members downed when each member of ``deciders`` acts on ``state``."""
    gone: set[str] = set()
    leader = state.leader()
    for member in deciders:
        decision = keep_majority(state, uuid(member), stable_for=10.0, down_after=10.0)
        if decision.verdict is Verdict.DOWN_SELF:
            gone.add(member)
        elif decision.verdict is Verdict.DOWN_UNREACHABLE:
            assert leader is not None
            if letter(leader.uuid) in deciders:
                gone |= {letter(u) for u in decision.unreachable}
    return "".join(sorted(gone))


# (name, cluster size, deciding side, records, downed here, downed by Pekko)
PEKKO_KEEP_MAJORITY = [
    ("keep the majority {A, B, C} | {D, E}", 5, "ABC", "", "DE", "DE"),
    ("the minority downs itself {A, B, C} | {D, E}", 5, "DE", "", "DE", "DE"),
    ("a tie keeps the lowest address {A, B} | {C, D}", 4, "AB", "", "CD", "CD"),
    ("a tie without the lowest address {A, B} | {C, D}", 4, "CD", "", "CD", "CD"),
    ("{(A, B)} => {}", 2, "AB", "A>B B>A", "B", "AB"),
    ("{(A, B), C} => {C}", 3, "ABC", "A>B B>A", "B", "AB"),
    ("{(A, B, C)} => {}", 3, "ABC", "A>B B>C C>A", "ABC", "ABC"),
    ("{(A, B, C, D)} => {}", 4, "ABCD", "A>D D>A B>C C>B", "CD", "ABCD"),
    ("{(A, B, C), D, E} => {D, E}", 5, "ABCDE", "A>B B>C C>A", "BC", "ABC"),
    ("{A, (B, C), D, (E, F), G} => {A, D, G}", 7, "ABCDEFG", "B>C C>B E>F F>E", "CF", "BCEF"),
    # Pekko finds these through "seen"; here there is no cycle: the plain union decides
    ("seen: {(A, B, C)} => {}", 3, "ABC", "A>B A>C", "ABC", "ABC"),
    ("seen: {(A, B, C, D), E} => {E}", 5, "ABCDE", "B>C C>B A>D", "CD", "ABCD"),
    ("with crashed: {(A, B), D, E} | {C} => {D, E}", 5, "ABDE", "A>B B>A", "BC", "ABC"),
    # B and C count unreachable, so side 1 has no majority (research 1.8: Pekko counts them)
    ("{A, (B, C)} | {D, E} => {A}, side 1", 5, "ABC", "B>C C>B", "ABC", "BCDE"),
    ("{A, (B, C)} | {D, E} => {A}, side 2", 5, "DE", "", "DE", "DE"),
    ("{A, (B, C)} | {D, E} => {A}, side 2 saw B-C", 5, "DE", "B>C C>B", "DE", "BCDE"),
    ("{A, (B, C)} | {D, E, F, G}, side 1", 7, "ABC", "B>C C>B", "ABC", "ABC"),
    ("{A, (B, C)} | {D, E, F, G}, side 2", 7, "DEFG", "B>C C>B", "ABC", "ABC"),
    # D and E count unreachable: F and G are 2 of 7; Pekko counts D and E reachable (4 of 7)
    ("{A, B, C} | {(D, E), F, G} => {F, G}, side 2", 7, "DEFG", "D>E E>D", "DEFG", "ABCDE"),
    ("{A, (B), C} | {D, (E, F), G} => {D, G}, side 1", 7, "ABC", "B>E E>F F>B", "ABC", "ABCEF"),
    ("{A, (B), C} | {D, (E, F), G} => {D, G}, side 2", 7, "DEFG", "B>E E>F F>B", "DEFG", "ABCEF"),
    ("double indirectly connected {A, B, C} | {(D, E), (F, G)}, side 1", 7, "ABC", "D>E G>F",
     "ABC", "ABCDEFG"),
    ("double indirectly connected {A, B, C} | {(D, E), (F, G)}, side 2", 7, "DEFG", "D>E G>F",
     "DEFG", "ABCDEFG"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("size", "side", "records", "ours", "pekko"),
    [pytest.param(*case[1:], id=case[0]) for case in PEKKO_KEEP_MAJORITY],
)
def test_pekko_keep_majority_cases(
    size: int, side: str, records: str, ours: str, pekko: str
) -> None:
    assert downed(table(size, side, records), side) == ours


# Five members A, B, C, D and X (= E, the highest address), each watching the other four.
E_CASES = [
    ("E1: X deaf, its row reaches the others", "ABCDE", "E>A E>B E>C E>D A>E B>E C>E D>E", "E"),
    ("E1: X deaf, holding only its own row", "E", "E>A E>B E>C E>D", "E"),
    ("E2: X deaf, then crashed", "ABCD", "E>A E>B E>C E>D A>E B>E C>E D>E", "E"),
    ("E3: only X's early partial row escaped", "ABCDE", "E>A A>E B>E C>E D>E", "AE"),
    ("E4: {A, B} | {C, D} with X bridging", "ABCDE", "A>C A>D B>C B>D C>A C>B D>A D>B", "CD"),
    ("E5: clean partition, side {A, B}", "AB", "A>C A>D A>E B>C B>D B>E", "AB"),
    ("E5: clean partition, side {C, D, X}", "CDE", "C>A C>B D>A D>B E>A E>B", "AB"),
]


@pytest.mark.parametrize(
    ("deciders", "records", "expected"), [pytest.param(*c[1:], id=c[0]) for c in E_CASES]
)
def test_research_cases(deciders: str, records: str, expected: str) -> None:
    state = table(5, "ABCDE", records)
    assert downed(state, deciders) == expected


def test_a_suspect_finds_itself_a_suspect_and_downs_itself() -> None:
    state = table(5, "ABCDE", "E>A E>B E>C E>D A>E")
    assert state.unreachable() == frozenset({uuid("E")})
    decision = keep_majority(state, uuid("E"), stable_for=10.0, down_after=10.0)
    assert decision.verdict is Verdict.DOWN_SELF


def test_members_found_silent_but_not_confirmed_count_against_this_member_only() -> None:
    """A (the lowest address) has published B, C and F (4 of 7 spared: it would keep), but
    finds D, E and G silent too, unconfirmed by any relay: it cannot hear a majority, so it
    does not down the others; nor does it down itself on silences alone, which its next rounds
    confirm or clear: it waits. Once they are published, it downs itself. The same table read
    without A's local silence still keeps, as every other member reads it."""
    state = table(7, "ABCDEFG", "A>B A>C A>F")
    keeping = keep_majority(state, uuid("A"), stable_for=10.0, down_after=10.0)
    assert keeping.verdict is Verdict.DOWN_UNREACHABLE
    silent = frozenset(uuid(x) for x in "DEG")
    alone = keep_majority(state, uuid("A"), stable_for=10.0, down_after=10.0, silent=silent)
    assert alone.verdict is Verdict.WAIT
    published = table(7, "ABCDEFG", "A>B A>C A>F A>D A>E A>G")
    confirmed = keep_majority(published, uuid("A"), stable_for=10.0, down_after=10.0)
    assert confirmed.verdict is Verdict.DOWN_SELF


def test_a_member_that_loses_on_unconfirmed_silences_alone_waits() -> None:
    """Seed 159's decision: E is LEAVING, A crashed (published), B is silent to C but not
    confirmed yet. Counted with B, C keeps; counted without it, C would down itself (a tie
    with the changes in flight). It waits instead of downing itself on B's silence."""
    state = table(5, "ABCDE", "C>A D>A")
    state = state.set_status(uuid("E"), MemberStatus.LEAVING, by=uuid("A"))
    assert keep_majority(state, uuid("C"), 10.0, 10.0).verdict is Verdict.DOWN_UNREACHABLE
    silent = frozenset({uuid("B")})
    assert keep_majority(state, uuid("C"), 10.0, 10.0, silent=silent).verdict is Verdict.WAIT


def test_of_the_fewest_to_down_the_cover_that_leaves_the_fewest_unreachable_is_taken() -> None:
    """Seed 848's table: A cannot hear (it marks B and C), C and D mark A. The cover of the
    A-C accusation is one member, A or C; with C (the higher address, the old tie-break) A's
    verdicts still stood and A, B and C counted unreachable, so B downed itself for A's
    deafness. With A, only A is unreachable: it is downed, and B and C stay."""
    state = table(7, "ABCDEFG", "A>B A>C C>A D>A")
    assert state.unreachable() == frozenset({uuid("A")})
    assert downed(state, "ABCDEFG") == "A"


def test_every_minimum_cover_is_offered_in_order_of_preference() -> None:
    rank = {u: (Address("10.0.0.1", 5701 + i), u) for i, u in enumerate("abcd")}
    path = {"a": frozenset("b"), "b": frozenset("ac"), "c": frozenset("bd"), "d": frozenset("c")}
    assert fewest_to_down(path, rank) == (frozenset("bd"), frozenset("bc"), frozenset("ac"))
    assert fewest_to_down({"a": frozenset()}, rank) == ()
