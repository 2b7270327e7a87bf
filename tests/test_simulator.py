"""The real step function under seeded faults, in the deterministic simulator.

Every run checks the rules of ``messages.testing.invariants`` after every step, and convergence of
the live members within a bounded number of gossip rounds after the last fault. A failing seed
prints its fault schedule and last steps; ``Simulation(seed=..., members=...).run()`` replays it.
"""

from __future__ import annotations

from collections.abc import Set

import pytest

from messages.membership import detection
from messages.membership.downing import Decision, Verdict, pending_unreachable
from messages.membership.effects import TerminationKind
from messages.membership.state import MembershipState
from messages.testing.faults import Fault, FaultKind
from messages.testing.simulator import Outcome, Simulation

SCHEDULES = 300
CHUNK = 30


def partition(at: float, until: float, *groups: tuple[int, ...]) -> list[Fault]:
    return [
        Fault(FaultKind.PARTITION, at, until, groups=groups, ident=1),
        Fault(FaultKind.HEAL, until, until, heals=1),
    ]


def run(seed: int, members: int, faults: list[Fault]) -> Outcome:
    outcome = Simulation(seed, members, faults=faults, start_converged=True).run()
    assert outcome.ok, outcome.report()
    return outcome


@pytest.mark.parametrize("first", range(0, SCHEDULES, CHUNK))
def test_seeded_fault_schedules_break_no_rule_and_converge(first: int) -> None:
    """5 to 7 members formed by joins, then 2-6 random faults (partitions, one-way partitions,
    loss/duplication/reordering, crashes and restarts, pauses, limping, deaf and partly cut
    members, joins, a leave), all healing."""
    for seed in range(first, first + CHUNK):
        outcome = Simulation(seed, members=5 + seed % 3).run()
        assert outcome.ok, outcome.report()
        assert outcome.rounds_to_converge is not None


def test_a_seed_replays_exactly() -> None:
    first = Simulation(11, members=6).run()
    again = Simulation(11, members=6).run()
    assert (first.steps, first.trace, first.rounds_to_converge) == (
        again.steps,
        again.trace,
        again.rounds_to_converge,
    )
    assert "replay: Simulation(seed=11, members=6).run()" in first.report()


def test_a_partition_that_heals_before_downing_costs_nobody() -> None:
    outcome = run(1, 7, partition(1.0, 7.0, (0, 1, 2), (3, 4, 5, 6)))
    assert outcome.survivors == 7
    assert outcome.rounds_to_converge is not None
    assert outcome.rounds_to_converge < 10


def test_a_partition_that_heals_after_downing_leaves_the_majority() -> None:
    outcome = run(2, 5, partition(1.0, 30.0, (0, 1), (2, 3, 4)))
    assert outcome.survivors == 3
    # what the membership actor would log, counted: suspicions, then the downings on both sides
    assert outcome.effects["Suspected"] >= 2 * 3
    assert outcome.effects["Downing"] >= 2  # the majority's leader, and each of the minority


def test_a_member_paused_past_its_removal_stops_when_it_wakes() -> None:
    outcome = run(3, 5, [Fault(FaultKind.PAUSE, 1.0, 40.0, target=4)])
    assert outcome.survivors == 4


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pair_paused_past_its_removal_and_the_joiners_that_followed_do_not_both_keep(
    seed: int,
) -> None:
    """The majority m0-m2 downs and removes the paused m3 and m4, admits two joiners (m5, m6),
    then crashes. When m3 and m4 wake, and once the joiners find the crashes, each pair finds
    every other member it knows confirmed gone, and neither can know of the other. A rule that
    keeps on that alone ("the last ones standing") leaves two live clusters, which the
    split-brain check cannot see (neither pair downed the other) and the convergence check
    catches. Main: both pairs down themselves, a total loss."""
    faults = [
        Fault(FaultKind.PAUSE, 5.0, 50.0, target=3),
        Fault(FaultKind.PAUSE, 5.0, 50.0, target=4),
        Fault(FaultKind.JOIN, 25.0, 25.0),
        Fault(FaultKind.JOIN, 26.0, 26.0),
        *(Fault(FaultKind.CRASH, 40.0, 40.0, target=t) for t in (0, 1, 2)),
    ]
    outcome = Simulation(seed, 5, faults=faults).run()
    assert outcome.ok, outcome.report()


def test_a_leave_during_a_partition_elsewhere_completes() -> None:
    faults = [
        *partition(1.0, 6.0, (0, 1), (3, 4)),
        Fault(FaultKind.LEAVE, 2.0, 2.0, target=2),
    ]
    outcome = run(4, 5, faults)
    assert outcome.survivors == 4


def test_a_crashed_member_restarted_at_its_address_rejoins() -> None:
    faults = [
        Fault(FaultKind.CRASH, 1.0, 20.0, target=3),
        Fault(FaultKind.RESTART, 20.0, 20.0, target=3),
    ]
    outcome = run(5, 5, faults)
    assert outcome.survivors == 5


def test_the_checks_catch_a_downing_rule_that_allows_split_brain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a downing rule where every side keeps the cluster, a long partition ends in two
    clusters, and the simulator says so: its checks are not vacuous."""

    def everyone_keeps(
        state: MembershipState,
        self_uuid: str,
        stable_for: float,
        down_after: float,
        silent: Set[str] = frozenset(),
    ) -> Decision:
        pending = pending_unreachable(state)
        verdict = Verdict.DOWN_UNREACHABLE if pending and stable_for >= down_after else Verdict.WAIT
        return Decision(verdict, pending, 0, 0)

    monkeypatch.setattr(detection, "keep_majority", everyone_keeps)
    faults = partition(1.0, 30.0, (0, 1), (2, 3, 4))
    outcome = Simulation(2, 5, faults=faults, start_converged=True).run()
    assert [v.rule for v in outcome.violations][:1] == ["split-brain"]


def test_a_member_that_leaves_is_reported_left_not_unreachable() -> None:
    simulation = Simulation(6, 5, faults=[Fault(FaultKind.LEAVE, 1.0, 1.0, target=2)])
    simulation.start_converged = True
    outcome = simulation.run()
    assert outcome.ok, outcome.report()
    leaver = next(m for m in simulation._members if m.index == 2)
    assert leaver.node.termination is not None
    assert leaver.node.termination.kind is TerminationKind.LEFT


@pytest.mark.parametrize(
    ("seed", "why"),
    [
        (152, "a crashed member's frozen row, confirmed gone, is set aside"),
        (88, "a member that downed itself refuses dials: its row is set aside too"),
        (12, "the same, with a joiner and a leave in flight"),
        (94, "a self-down on silences not confirmed yet waits"),
        (199, "the same, with a stopped member's row set aside"),
        (288, "a member that hears a target its row still accuses does not down itself"),
        (426, "the same, after a one-way cut healed"),
        (346, "a member that heard from a member it accuses waits a pause before its self-down"),
        (930, "the same, a deaf member healing"),
        (848, "of the fewest to down, the cover that leaves the fewest unreachable"),
        (6, "with the far side's majority gone (crashes confirmed), a self-down waits a window"),
        (505, "the same, a member downed here counted over there"),
        (713, "the same, with a joiner over there"),
        (587, "the same on both sides of a partition, until it heals"),
        (1740, "a member that heard from a member whose row accuses it waits a pause"),
        (186, "a self-down only rows of members nobody hears make lose waits a window"),
        (390, "the same, with a paused member's frozen row"),
        (822, "the same, the fewest whose rows leave no accusation being the stale ones"),
        (718, "the same, with a member that downed itself meanwhile"),
    ],
)
def test_schedules_that_once_lost_every_member_keep_a_majority(seed: int, why: str) -> None:
    """Each of these schedules once ended with no member left though a majority could have
    stayed (an avoidable total loss); the rule named in ``why`` keeps it."""
    outcome = Simulation(seed=seed, members=5 + seed % 3).run()
    assert outcome.ok, outcome.report()
    assert outcome.survivors > 0, why


@pytest.mark.parametrize(("seed", "members"), [(8552, 7), (4850, 7), (63, 5)])
def test_a_leaver_that_stopped_is_not_accused_on_its_refused_dials(seed: int, members: int) -> None:
    """A member that completes a graceful leave stops, and its port refuses dials: that is no
    crash to accuse it of (the 10,000-schedule run found leavers reported unreachable once
    stopped members refused dials in the simulator)."""
    outcome = Simulation(seed, members=members).run()
    assert outcome.ok, outcome.report()
