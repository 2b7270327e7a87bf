"""Simulation benchmark: the real step function under seeded faults, and convergence after a heal.

Usage: ``python benchmarks/simulate.py [--seeds N] [--members M] [--scale-members 10,100,1000]
[--scale-seeds 5,3,1] [--budget SECONDS] [--no-scale] [--quick]``. Prints ``name: value`` lines,
then one ``target_<name>: ok|MISSED`` line per target; exits with status 1 if any run broke a rule.

Random schedules: seeds ``0..N-1`` of ``messages.testing.simulator.Simulation``, each forming a
cluster by joins and then suffering a random schedule of 2-6 faults drawn from its seed
(partitions, one-way partitions, loss/duplication/reordering windows, crashes and restarts,
pauses, limping members, loss of all traffic into one member, one member cut from some peers,
joins, one leave), with ``5 + seed % 3`` members unless ``--members`` is given. Figures:
schedules and node-steps per second of wall time, violations of the safety rules and of
convergence (each failing seed's replayable report is printed, at most 3), runs in which no
member survived, split into forced (the schedule alone left no majority for longer than the protocol
needs to decide: ``messages.testing.majority``) and avoidable, and gossip rounds from the end of the
last fault until every live member holds the same converged view (median, max).

Scale (unless ``--no-scale``): a converged cluster of N members (``start_converged``), split half
and half from t=1 s to t=7 s with the default timings (``Settings.lan()``: heartbeats and gossip
every 1 s, detection about 4.5 s after the last heartbeat, ``down_after`` 10 s), so the halves
find each other unreachable but nobody is downed; then the gossip rounds from the heal until
every member holds the same converged view, per N: median and max over the seeds, node-steps
per second, node-steps per member, wall time; and a least-squares fit of the median rounds
against log2(N), with rounds / log2(N) per N, to show whether convergence after a heal is
O(log N). A run that takes more than ``--budget`` seconds of wall time is abandoned and reported
as unfinished (with the simulated time and steps it reached), and the size's other seeds skipped.

Defaults: 200 schedules; sizes 10, 30, 100, 200 and 1,000 with 5, 5, 3, 1 and 1 seeds; a 60 s
budget (about 2 minutes; on 2026-11-28 the 1,000-member run went over its budget). ``--quick``:
20 schedules, sizes 10 and 100 with 2 and 1 seeds (about 5 s). ``--scale-members`` without
``--scale-seeds`` runs one seed per size.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from report import Report

from messages.events import ClusterEvent, MemberDowned, MemberUnreachable
from messages.settings import Settings
from messages.testing.faults import Fault, FaultKind
from messages.testing.invariants import WorldHistory
from messages.testing.majority import decision_time, majority_lost_at
from messages.testing.simulator import Outcome, Simulation

PARTITION_AT = 1.0
HEAL_AT = 9.0
"""Past detection of a silence (phi past the acceptable pause, then the relays' confirmation:
about 7 s after the cut here; healed at 7.0 nobody had noticed it), short of downing (``down_after``
of stable unreachability). ``heal_scenario_misses`` counts the runs that were not."""
MAX_REPORTS = 3
MAX_SEEDS_LISTED = 10

TARGETS: dict[str, float] = {
    "violations": 0,
    "heal_violations": 0,
    "heal_scenario_misses": 0,
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much one run simulates."""

    seeds: int  # random schedules
    scale_members: tuple[int, ...]
    scale_seeds: tuple[int, ...]  # per size in scale_members
    budget_s: float  # wall seconds one scale run may take


FULL = Sizes(200, (10, 30, 100, 200, 1000), (5, 5, 3, 1, 1), 60.0)
QUICK = Sizes(20, (10, 100), (2, 1), 30.0)


# -- random fault schedules ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Schedules:
    """The outcomes of the random schedules and the wall time they took."""

    outcomes: list[Outcome]
    seconds: float


def random_schedules(seeds: int, members: int | None) -> Schedules:
    """Seeds ``0..seeds-1``, each with ``members`` members (default ``5 + seed % 3``)."""
    started = time.perf_counter()
    outcomes = [
        Simulation(seed, members if members is not None else 5 + seed % 3).run()
        for seed in range(seeds)
    ]
    return Schedules(outcomes, time.perf_counter() - started)


def report_schedules(schedules: Schedules, members: int | None, report: Report) -> None:
    outcomes = schedules.outcomes
    failing = [outcome for outcome in outcomes if not outcome.ok]
    rounds = [o.rounds_to_converge for o in outcomes if o.rounds_to_converge is not None]
    steps = sum(outcome.steps for outcome in outcomes)
    report("schedules", len(outcomes))
    report("schedule_members", str(members) if members is not None else "5..7 (5 + seed % 3)")
    report(
        "fault_events_per_schedule_median",
        float(statistics.median(len(o.faults) for o in outcomes)),
    )
    report("schedules_seconds", schedules.seconds)
    report("schedules_per_s", len(outcomes) / schedules.seconds)
    report("node_steps_per_schedule_median", float(statistics.median(o.steps for o in outcomes)))
    report("node_steps_per_s", steps / schedules.seconds)
    report("violations", sum(len(outcome.violations) for outcome in outcomes))
    report("failing_seeds", " ".join(str(o.seed) for o in failing) or "none")
    deserted = [outcome for outcome in outcomes if outcome.survivors == 0]
    decide = decision_time(Settings.lan())
    avoidable = [o.seed for o in deserted if majority_lost_at(o.faults, o.members, decide) is None]
    report("runs_without_survivors", len(deserted))
    report("runs_without_survivors_forced", len(deserted) - len(avoidable))
    report("runs_without_survivors_avoidable", len(avoidable))
    if deserted:
        seeds = [outcome.seed for outcome in deserted]
        report("runs_without_survivors_seeds", " ".join(map(str, seeds[:MAX_SEEDS_LISTED])))
    if avoidable:
        listed = " ".join(map(str, avoidable[:MAX_SEEDS_LISTED]))
        report("runs_without_survivors_avoidable_seeds", listed)
    effects: Counter[str] = Counter()
    for outcome in outcomes:
        effects.update(outcome.effects)
    report("effects", " ".join(f"{name}={effects[name]}" for name in sorted(effects)))
    report("runs_converged", len(rounds))
    if rounds:
        report("rounds_to_converge_after_last_fault_median", float(statistics.median(rounds)))
        report("rounds_to_converge_after_last_fault_max", max(rounds))
    for outcome in failing[:MAX_REPORTS]:
        print(f"--- failing seed {outcome.seed}", flush=True)
        print(outcome.report(), flush=True)


# -- convergence after a healed partition, by cluster size ---------------------------------------


def healed_partition(members: int) -> list[Fault]:
    """The first half of the members cut off from the second from PARTITION_AT to HEAL_AT."""
    half = members // 2
    groups = (tuple(range(half)), tuple(range(half, members)))
    return [
        Fault(FaultKind.PARTITION, PARTITION_AT, HEAL_AT, groups=groups, ident=1),
        Fault(FaultKind.HEAL, HEAL_AT, HEAL_AT, heals=1),
    ]


class WatchedHistory(WorldHistory):
    """The simulator's history, also noting who reported a member unreachable before the heal,
    and every downing: the scenario is meant to be past detection and short of downing."""

    def __init__(self) -> None:
        super().__init__()
        self.observers: set[str] = set()
        self.downed = 0

    def fired(self, uuid: str, events: tuple[ClusterEvent, ...], now: float) -> None:
        super().fired(uuid, events, now)
        for event in events:
            if isinstance(event, MemberUnreachable) and now <= HEAL_AT:
                self.observers.add(uuid)
            elif isinstance(event, MemberDowned):
                self.downed += 1


class OverBudget(BaseException):
    """A run took longer than its budget (a BaseException: the simulator catches Exception from a
    step and records it as a violation)."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raises OverBudget in the block after ``seconds`` of wall time (Unix, main thread)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise OverBudget

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass(frozen=True)
class HealRun:
    """One healed-partition run: its outcome (None when it went over budget), the simulated time
    and node-steps it reached, its wall time, and who saw the partition."""

    members: int
    seed: int
    outcome: Outcome | None
    simulated_s: float
    steps: int
    seconds: float
    observers_before_heal: int
    downed: int


def heal_run(members: int, seed: int, budget_s: float = math.inf) -> HealRun:
    """A converged cluster of ``members`` split half/half from PARTITION_AT to HEAL_AT."""
    simulation = Simulation(seed, members, faults=healed_partition(members), start_converged=True)
    history = simulation.history = WatchedHistory()
    started = time.perf_counter()
    outcome: Outcome | None = None
    try:
        if math.isinf(budget_s):
            outcome = simulation.run()
        else:
            with budget(budget_s):
                outcome = simulation.run()
    except OverBudget:
        pass
    return HealRun(
        members=members,
        seed=seed,
        outcome=outcome,
        simulated_s=simulation.now,
        steps=simulation.steps,
        seconds=time.perf_counter() - started,
        observers_before_heal=len(history.observers),
        downed=history.downed,
    )


def heal_runs(members: int, seeds: int, budget_s: float = math.inf) -> list[HealRun]:
    """Seeds ``0..seeds-1`` of heal_run; after one goes over budget, the rest are skipped."""
    runs: list[HealRun] = []
    for seed in range(seeds):
        runs.append(heal_run(members, seed, budget_s))
        if runs[-1].outcome is None:
            break
    return runs


def least_squares(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Slope and intercept of the line y = slope x + intercept nearest to ``points``."""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return slope, mean_y - slope * mean_x


def report_size(runs: Sequence[HealRun], budget_s: float, report: Report) -> float | None:
    """The figures of one size's healed-partition runs; returns their median rounds after the
    heal (None when no run finished and converged)."""
    members = runs[0].members
    done = [run.outcome for run in runs if run.outcome is not None]
    seconds = sum(run.seconds for run in runs)
    prefix = f"heal_{members}_"
    report(f"{prefix}seeds", len(done))
    report(f"{prefix}seconds", seconds)
    report(f"{prefix}seconds_per_seed_max", max(run.seconds for run in runs))
    report(f"{prefix}node_steps_per_s", sum(run.steps for run in runs) / seconds)
    finished = [run for run in runs if run.outcome is not None]
    if finished:
        per_member = statistics.median(run.steps / members for run in finished)
        report(f"{prefix}node_steps_per_member_median", float(per_member))
        observers = min(run.observers_before_heal for run in finished)
        report(f"{prefix}members_that_saw_unreachable_before_heal_min", observers)
    report(f"{prefix}downed", sum(run.downed for run in runs))
    report(f"{prefix}violations", sum(len(outcome.violations) for outcome in done))
    for outcome in [outcome for outcome in done if not outcome.ok][:MAX_REPORTS]:
        print(f"--- failing heal run, {members} members, seed {outcome.seed}", flush=True)
        print(outcome.report(), flush=True)
    if len(done) < len(runs):
        over = runs[-1]
        report(
            f"{prefix}unfinished",
            f"seed {over.seed} over the {budget_s:g} s budget at simulated "
            f"t={over.simulated_s:.3f} s after {over.steps} node-steps",
        )
    rounds = [o.rounds_to_converge for o in done if o.rounds_to_converge is not None]
    if not rounds:
        return None
    median = float(statistics.median(rounds))
    report(f"{prefix}rounds_after_heal_median", median)
    report(f"{prefix}rounds_after_heal_max", max(rounds))
    if members > 1:
        report(f"{prefix}rounds_per_log2_n", median / math.log2(members))
    return median


def report_scale(sizes: Sizes, report: Report) -> int:
    """The healed-partition runs at each size and the fit of rounds against log2(N); returns the
    violations they had."""
    report("heal_partition_s", f"{PARTITION_AT:g}-{HEAL_AT:g}")
    report("heal_budget_s", sizes.budget_s)
    medians: dict[int, float] = {}
    violations = misses = 0
    for members, seeds in zip(sizes.scale_members, sizes.scale_seeds, strict=True):
        runs = heal_runs(members, seeds, sizes.budget_s)
        violations += sum(len(run.outcome.violations) for run in runs if run.outcome)
        misses += sum(
            run.observers_before_heal < members or run.downed > 0 for run in runs if run.outcome
        )
        median = report_size(runs, sizes.budget_s, report)
        if median is not None:
            medians[members] = median
    if len(set(medians)) >= 2:
        slope, intercept = least_squares([(math.log2(n), m) for n, m in medians.items()])
        report("heal_fit_sizes", " ".join(str(n) for n in medians))
        report("heal_fit_slope_rounds_per_log2_n", slope)
        report("heal_fit_intercept_rounds", intercept)
    else:
        report("heal_fit", "fewer than two sizes finished")
    report("heal_violations", violations)
    report("heal_scenario_misses", misses)
    return violations


def int_list(text: str) -> tuple[int, ...]:
    """``"10,100,1000"`` as (10, 100, 1000)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        message = f"not a comma-separated list of integers: {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every value must be at least 1: {text!r}")
    return values


def positive_int(text: str) -> int:
    (value,) = int_list(text)
    return value


def sizes_from(arguments: argparse.Namespace) -> Sizes:
    """The sizes of the chosen mode, with the command line's choices in their place."""
    sizes = QUICK if arguments.quick else FULL
    members = arguments.scale_members or sizes.scale_members
    seeds = arguments.scale_seeds or (sizes.scale_seeds if members == sizes.scale_members else (1,))
    if len(seeds) == 1:
        seeds *= len(members)
    if len(seeds) != len(members):
        raise SystemExit(f"--scale-seeds needs one count, or one per size ({len(members)})")
    return Sizes(
        seeds=arguments.seeds if arguments.seeds is not None else sizes.seeds,
        scale_members=members,
        scale_seeds=seeds,
        budget_s=arguments.budget if arguments.budget is not None else sizes.budget_s,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seeds", type=positive_int, help=f"random schedules (default {FULL.seeds})"
    )
    parser.add_argument(
        "--members", type=positive_int, help="members per schedule (default 5 + seed %% 3)"
    )
    parser.add_argument(
        "--scale-members",
        type=int_list,
        help="cluster sizes of the healed-partition runs, comma-separated "
        f"(default {','.join(map(str, FULL.scale_members))})",
    )
    parser.add_argument(
        "--scale-seeds",
        type=int_list,
        help="seeds per size, one count or one per size "
        f"(default {','.join(map(str, FULL.scale_seeds))})",
    )
    parser.add_argument(
        "--budget",
        type=float,
        help=f"wall seconds one scale run may take (default {FULL.budget_s:g})",
    )
    parser.add_argument("--no-scale", action="store_true", help="only the random schedules")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.seeds} schedules, sizes "
        f"{','.join(map(str, QUICK.scale_members))} (about 5 s)",
    )
    arguments = parser.parse_args(argv)
    sizes = sizes_from(arguments)
    report = Report(TARGETS)
    report.environment()
    report("mode", "quick" if arguments.quick else "full")
    started = time.perf_counter()
    schedules = random_schedules(sizes.seeds, arguments.members)
    report_schedules(schedules, arguments.members, report)
    violations = int(report.figures["violations"])
    if not arguments.no_scale:
        violations += report_scale(sizes, report)
    report("total_seconds", time.perf_counter() - started)
    report.check_targets()
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
