"""The simulator's fault model: the faults one bad member causes (a limp, deafness, a partial cut),
and the classification of a total loss as forced by the schedule or avoidable."""

from __future__ import annotations

import random
from typing import Any

import pytest

from messages.settings import Settings
from messages.testing.faults import NEW_KINDS, Fault, FaultKind, Network, schedule_faults
from messages.testing.majority import decision_time, majority_lost_at
from messages.testing.simulator import Simulation

DECIDE = decision_time(Settings.lan())  # 14 s: 1 s heartbeat, 3 s pause, 10 s down_after


def healing(kind: FaultKind, at: float, until: float, ident: int, **fields: Any) -> list[Fault]:
    return [
        Fault(kind, at, until, ident=ident, **fields),
        Fault(FaultKind.HEAL, until, until, heals=ident),
    ]


def crash(at: float, target: int, restart: float | None = None) -> list[Fault]:
    faults = [Fault(FaultKind.CRASH, at, restart or at, target=target)]
    if restart is not None:
        faults.append(Fault(FaultKind.RESTART, restart, restart, target=target))
    return faults


# -- the new faults --------------------------------------------------------------------------


def test_a_limping_member_runs_the_first_part_of_each_second_until_the_limp_ends() -> None:
    limp = Fault(FaultKind.LIMP, 10.0, 12.5, target=1, runs=0.2)
    assert limp.wakes_at(9.5) == 9.5  # before
    assert limp.wakes_at(10.1) == 10.1  # running
    assert limp.wakes_at(10.5) == pytest.approx(11.0)  # frozen until the next second
    assert limp.wakes_at(11.0) == 11.0
    assert limp.wakes_at(12.3) == pytest.approx(12.5)  # the limp ends first
    assert limp.wakes_at(12.5) == 12.5


def test_a_deaf_member_still_sends_and_hears_again_after_the_heal() -> None:
    deaf, heal = healing(FaultKind.DEAF, 1.0, 5.0, 1, target=2)
    network = Network([deaf, heal])
    network.apply(deaf)
    assert not network.delivers(0, 2)
    assert network.delivers(2, 0)
    network.apply(heal)
    assert network.delivers(0, 2)


def test_a_cut_member_loses_only_the_peers_it_is_cut_from_both_ways() -> None:
    cut, heal = healing(FaultKind.CUT, 1.0, 5.0, 1, target=0, groups=((0,), (1, 2)))
    network = Network([cut, heal])
    network.apply(cut)
    assert not network.delivers(0, 1)
    assert not network.delivers(2, 0)
    assert network.delivers(0, 3)
    assert network.delivers(3, 0)
    assert network.delivers(1, 2)
    network.apply(heal)
    assert network.delivers(0, 1)


def test_a_leaver_still_reaches_a_deaf_member() -> None:
    leave = Fault(FaultKind.LEAVE, 2.0, 2.0, target=3)
    deaf = Fault(FaultKind.DEAF, 1.0, 5.0, target=2, ident=1)
    network = Network([leave, deaf])
    network.apply(deaf)
    assert network.delivers(3, 2)
    assert not network.delivers(0, 2)


def test_schedules_draw_every_new_kind_and_heal_it_and_without_them_draw_the_old_ones() -> None:
    drawn = [schedule_faults(random.Random(seed), 6, 6, 5.0) for seed in range(40)]
    kinds = {fault.kind for faults in drawn for fault in faults}
    assert kinds >= NEW_KINDS
    for faults in drawn:
        healed = {fault.heals for fault in faults if fault.kind is FaultKind.HEAL}
        peers_at_most = 5 + sum(1 for fault in faults if fault.kind is FaultKind.JOIN)
        for fault in faults:
            if fault.kind in (FaultKind.DEAF, FaultKind.CUT):
                assert fault.ident in healed
            if fault.kind is FaultKind.CUT:
                (target,), peers = fault.groups
                assert 0 < len(peers) < peers_at_most
                assert target not in peers
            if fault.kind is FaultKind.LIMP:
                assert fault.until - fault.at <= 60.0
                assert 0.0 < fault.runs < 1.0
    old = [schedule_faults(random.Random(seed), 6, 6, 5.0, new_kinds=False) for seed in range(40)]
    assert not {fault.kind for faults in old for fault in faults} & NEW_KINDS


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        (FaultKind.LIMP, {"target": 4, "runs": 0.2}),
        (FaultKind.DEAF, {"target": 4}),
        (FaultKind.CUT, {"target": 4, "groups": ((4,), (0, 1))}),
    ],
)
def test_one_bad_member_for_a_minute_breaks_no_rule(
    kind: FaultKind, fields: dict[str, Any]
) -> None:
    faults = healing(kind, 1.0, 61.0, 1, **fields)
    if kind is FaultKind.LIMP:
        faults = faults[:1]  # a limp ends by itself
    outcome = Simulation(7, 5, faults=faults, start_converged=True).run()
    assert outcome.ok, outcome.report()


# -- forced or avoidable -----------------------------------------------------------------------


def test_no_fault_never_forces_a_loss() -> None:
    assert majority_lost_at([], 5, DECIDE) is None


def test_a_majority_crashed_for_good_forces_the_loss() -> None:
    faults = crash(10.0, 2) + crash(10.0, 3) + crash(11.0, 4)
    assert majority_lost_at(faults, 5, DECIDE) == 11.0


def test_a_minority_crashed_one_after_another_forces_nothing_until_one_of_two() -> None:
    """Each crash is removed by the majority before the next: 5, then 4, then 3 counted."""
    faults = crash(10.0, 4) + crash(30.0, 3) + crash(50.0, 2)
    assert majority_lost_at(faults, 5, DECIDE) is None
    assert majority_lost_at(faults + crash(70.0, 0), 5, DECIDE) == 70.0  # m1 of m0, m1


def test_crashes_too_close_to_remove_one_by_one_force_the_loss() -> None:
    """The second crash comes before the first could be removed: 3 of 5 counted are gone."""
    faults = crash(10.0, 4) + crash(15.0, 3) + crash(20.0, 2)
    assert majority_lost_at(faults, 5, DECIDE) == 20.0


def test_a_half_with_the_lowest_address_keeps_the_cluster() -> None:
    keeps = healing(FaultKind.PARTITION, 5.0, 60.0, 1, groups=((0, 1), (2, 3)))
    assert majority_lost_at(keeps, 4, DECIDE) is None


def test_a_partition_into_minorities_forces_the_loss_only_past_the_decision_time() -> None:
    groups = ((0, 1), (2, 3), (4, 5, 6))
    split = [
        Fault(FaultKind.PARTITION, 5.0, until, groups=(groups[0], groups[1] + groups[2]), ident=1)
        for until in (15.0, 60.0)
    ]
    other = [
        Fault(FaultKind.PARTITION, 5.0, until, groups=(groups[1], groups[0] + groups[2]), ident=2)
        for until in (15.0, 60.0)
    ]
    for first, second, forced in ((split[0], other[0], None), (split[1], other[1], 5.0)):
        heals = [
            Fault(FaultKind.HEAL, first.until, first.until, heals=1),
            Fault(FaultKind.HEAL, second.until, second.until, heals=2),
        ]
        assert majority_lost_at([first, second, *heals], 7, DECIDE) == forced


def test_a_picture_that_keeps_changing_forces_nothing() -> None:
    """m4 paused and the other four split in pairs for 32 s, but differently every 8 s: a
    careful protocol waits."""
    pairs = (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)), ((0, 1), (2, 3)))
    faults = [Fault(FaultKind.PAUSE, 5.0, 37.0, target=4)]
    for ident, groups in enumerate(pairs, start=1):
        at = 5.0 + 8.0 * (ident - 1)
        faults += healing(FaultKind.PARTITION, at, at + 8.0, ident, groups=groups)
    assert majority_lost_at(faults, 5, DECIDE) is None
    assert majority_lost_at(faults[:3], 5, DECIDE) is None  # 8 s only
    stuck = healing(FaultKind.PARTITION, 5.0, 37.0, 1, groups=pairs[1])
    assert majority_lost_at(faults[:1] + stuck, 5, DECIDE) == 5.0


def test_a_one_way_partition_leaves_a_detour() -> None:
    """m2 cannot send to m0 but reaches it through m1: one group of all three."""
    faults = healing(FaultKind.ONE_WAY, 5.0, 60.0, 1, groups=((2,), (0,)))
    faults += crash(5.0, 3) + crash(5.0, 4)
    assert majority_lost_at(faults, 5, DECIDE) is None


def test_a_deaf_member_is_a_group_of_its_own() -> None:
    """m0 and m1 deaf, m2 paused: m3 and m4 are two of five, without the lowest."""
    faults = healing(FaultKind.DEAF, 5.0, 60.0, 1, target=0)
    faults += healing(FaultKind.DEAF, 5.0, 60.0, 2, target=1)
    faults += [Fault(FaultKind.PAUSE, 5.0, 60.0, target=2)]
    assert majority_lost_at(faults, 5, DECIDE) == 5.0


def test_a_limping_member_counts_as_running() -> None:
    faults = [Fault(FaultKind.LIMP, 5.0, 65.0, target=i, runs=0.2) for i in range(3)]
    assert majority_lost_at(faults, 5, DECIDE) is None


def test_a_joiner_helps_its_own_group_and_a_leaver_counts_no_more() -> None:
    """m0,m1 against m2,m3,m4: the joiner m5 makes three of six with the lowest address; the
    leave of m4 leaves two against two."""
    joined = [Fault(FaultKind.JOIN, 2.0, 2.0)]
    cut = healing(FaultKind.PARTITION, 5.0, 60.0, 1, groups=((0, 1, 5), (2, 3)))
    paused = [Fault(FaultKind.PAUSE, 5.0, 60.0, target=4)]
    assert majority_lost_at(joined + cut + paused, 5, DECIDE) is None
    assert majority_lost_at(cut + paused, 5, DECIDE) == 5.0
    left = [Fault(FaultKind.LEAVE, 4.0, 4.0, target=4)]
    assert majority_lost_at(cut + left, 5, DECIDE) is None


def test_a_restarted_member_is_counted_as_crashed_until_removed() -> None:
    """m3 and m4 crash and come back at once, before anyone could remove them; the old
    incarnations count, and with m2 paused the rest cannot keep."""
    faults = crash(10.0, 3, restart=11.0) + crash(10.0, 4, restart=11.0)
    assert majority_lost_at(faults, 5, DECIDE) is None  # the new ones join the majority
    faults += [Fault(FaultKind.PAUSE, 10.0, 60.0, target=2)]
    faults += healing(FaultKind.PARTITION, 10.0, 60.0, 1, groups=((0, 1), (3, 4)))
    assert majority_lost_at(faults, 5, DECIDE) == 11.0
