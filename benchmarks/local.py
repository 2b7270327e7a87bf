"""Local benchmark: in-process figures of pykka-membership, each beside a baseline.

Usage: ``python benchmarks/local.py [--quick]``. Prints ``name: value`` lines. The machines are
noisy, so latencies are medians and percentiles of many samples, the actor measurements alternate
in blocks with their bare-pykka baselines, and each figure is printed with its baseline from the
same run and their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import statistics
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pykka
from report import Report
from simulate import heal_runs, random_schedules

from actors.listeners.callbacks import CallbackRunner
from actors.listeners.load_balancer import LoadBalancerActor
from actors.listeners.registry import ListenerRegistryActor
from messages.address import Address
from messages.events import CurrentClusterState, MemberUp
from messages.local.commands import GetClusterState, InitialState, NextMember, Subscribe
from messages.member import Member, MemberStatus
from messages.membership.effects import MembershipChanged
from messages.messaging.balancing import RoundRobinStrategy
from messages.vector_clock import VectorClock

ASK_TIMEOUT = 10.0
FANOUT_TIMEOUT = 30.0
BALANCED_MEMBERS = 10
SUBSCRIBERS = 1_000
CLOCK_ENTRIES = 10

TARGETS: dict[str, float] = {
    "next_member_vs_bare_ask_p50_ratio": 1.3,
    "cross_cpu_next_member_vs_bare_ask_p50_ratio": 1.3,
    "fanout_vs_bare_ratio": 2.0,
    "vector_clock_compare_10_us": 5.0,
    "vector_clock_merge_10_us": 5.0,
    "simulation_violations": 0,
    "simulation_heal_rounds_100_max": 10,  # about 1.5 log2(N) gossip rounds after the heal
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Sample sizes of one run."""

    asks: int  # per actor, after warm-up
    ask_block: int  # asks in a row before switching to the other actor
    ask_warmup: int
    fanout_repeats: int  # per measurement, after one warm-up each
    clock_calls: int  # per timeit repeat
    clock_repeats: int
    simulation_schedules: int  # random fault schedules, 5 to 7 members
    simulation_heal_seeds_10: int  # healed-partition runs of a 10-member cluster
    simulation_heal_seeds_100: int  # and of a 100-member one


FULL = Sizes(20_000, 500, 2_000, 31, 20_000, 9, 50, 5, 3)
QUICK = Sizes(3_000, 250, 500, 5, 5_000, 5, 10, 2, 1)


def up_member(index: int) -> Member:
    """The ``index``-th member (0-based) of a benchmark cluster, UP with up_number index + 1."""
    member = Member.create(Address("10.0.0.1", 5701 + index), member_uuid=f"member-{index:05d}")
    return member.with_status(MemberStatus.UP, up_number=index + 1)


def members_up(members: tuple[Member, ...], version: int) -> MembershipChanged:
    """A change at ``version`` that moves ``members`` to UP (one MemberUp each)."""
    events = tuple(MemberUp(version=version, member=member) for member in members)
    return MembershipChanged(events, CurrentClusterState(version=version, members=members))


@contextmanager
def registry_started() -> Iterator[pykka.ActorRef[Any]]:
    """A listener registry with its callback runner, both stopped on exit."""
    runner = CallbackRunner.start()
    registry = ListenerRegistryActor.start(runner)
    try:
        yield registry
    finally:
        registry.stop()
        runner.stop()


class ConstantActor(pykka.ThreadingActor):
    """Baseline of the ask path: replies to any message with a constant."""

    def on_receive(self, message: Any) -> Any:
        return 1


def percentile(sorted_samples: list[float], fraction: float) -> float:
    """The sample at ``fraction`` (0..1) of the way through ``sorted_samples``."""
    return sorted_samples[min(len(sorted_samples) - 1, int(len(sorted_samples) * fraction))]


def timed_asks(ref: pykka.ActorRef[Any], message: object, count: int) -> list[float]:
    """Round-trip times (microseconds) of ``count`` blocking asks of ``message``."""
    clock = time.perf_counter
    samples = []
    for _ in range(count):
        start = clock()
        ref.ask(message, timeout=ASK_TIMEOUT)
        samples.append((clock() - start) * 1e6)
    return samples


@dataclasses.dataclass(frozen=True)
class Placement:
    """The CPUs of the asking thread and of the actor threads (None: wherever the OS puts them).

    Unpinned, an ask took about 25 us when the actor's thread ran on the asker's CPU and about 70 us
    when it ran on the other one (2-CPU machine), and which it was varied from actor to actor and
    run to run: pinning makes the actor and its baseline compare like with like.
    """

    prefix: str
    asker_cpus: frozenset[int] | None
    actor_cpus: frozenset[int] | None


def ask_placements() -> list[Placement]:
    """All on one CPU, then (given two CPUs) the actors on another CPU than the asker."""
    if not hasattr(os, "sched_setaffinity"):
        return [Placement("", None, None)]
    first, *others = sorted(os.sched_getaffinity(0))
    placements = [Placement("", frozenset({first}), frozenset({first}))]
    if others:
        placements.append(Placement("cross_cpu_", frozenset({first}), frozenset({others[0]})))
    return placements


@contextmanager
def pinned(cpus: frozenset[int] | None) -> Iterator[None]:
    """Run the calling thread, and the threads it starts meanwhile, on ``cpus`` (None: anywhere)."""
    if cpus is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def ask_samples(sizes: Sizes, placement: Placement) -> tuple[list[float], list[float]]:
    """Sorted ask times (us) of NextMember to a load balancer and of the bare baseline."""
    members = tuple(up_member(i) for i in range(BALANCED_MEMBERS))
    with pinned(placement.actor_cpus), registry_started() as registry:
        balancer = LoadBalancerActor.start(registry, RoundRobinStrategy(0))
        bare = ConstantActor.start()
        try:
            registry.tell(members_up(members, version=1))
            registry.ask(GetClusterState(), timeout=ASK_TIMEOUT)  # the fan-out has been told
            message = NextMember()
            known = {balancer.ask(message, block=True, timeout=ASK_TIMEOUT) for _ in members}
            known.discard(None)  # what it gives when it knows no member
            if len(known) != BALANCED_MEMBERS:  # a round robin gives each member it knows in turn
                raise RuntimeError(f"load balancer knows {len(known)} members, not {len(members)}")
            balanced: list[float] = []
            baseline: list[float] = []
            with pinned(placement.asker_cpus):
                timed_asks(balancer, message, sizes.ask_warmup)
                timed_asks(bare, message, sizes.ask_warmup)
                for _ in range(sizes.asks // sizes.ask_block):
                    balanced += timed_asks(balancer, message, sizes.ask_block)
                    baseline += timed_asks(bare, message, sizes.ask_block)
        finally:
            bare.stop()
            balancer.stop()
    return sorted(balanced), sorted(baseline)


def bench_next_member(sizes: Sizes, report: Report) -> None:
    """NextMember asked of a round-robin load balancer with 10 up members vs a bare pykka ask."""
    for placement in ask_placements():
        balanced, baseline = ask_samples(sizes, placement)
        for name, fraction in (("p50", 0.5), ("p99", 0.99)):
            figure = percentile(balanced, fraction)
            base = percentile(baseline, fraction)
            report(f"{placement.prefix}next_member_ask_{name}_us", figure)
            report(f"{placement.prefix}bare_pykka_ask_{name}_us", base)
            report(f"{placement.prefix}next_member_vs_bare_ask_{name}_ratio", figure / base)
    report("ask_samples_each", sizes.asks // sizes.ask_block * sizes.ask_block)


class Latch:
    """A countdown shared by the receiver actors: ``wait`` returns when it has reached zero."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._done = threading.Event()

    def arm(self, count: int) -> None:
        with self._lock:
            self._remaining = count
            self._done.clear()

    def count_down(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self._done.set()

    def wait(self, timeout: float) -> None:
        if not self._done.wait(timeout):
            raise RuntimeError(f"receivers did not all count down within {timeout} s")


class CountingActor(pykka.ThreadingActor):
    """Counts down the shared latch on every message it receives."""

    def __init__(self, latch: Latch) -> None:
        super().__init__()
        self._latch = latch

    def on_receive(self, message: Any) -> Any:
        self._latch.count_down()
        return None


def time_until_all_received(latch: Latch, send: Callable[[], None]) -> float:
    """Milliseconds from the start of ``send()`` until every receiver has counted down."""
    latch.arm(SUBSCRIBERS)
    start = time.perf_counter()
    send()
    latch.wait(FANOUT_TIMEOUT)
    return (time.perf_counter() - start) * 1e3


def bench_fanout(sizes: Sizes, report: Report) -> None:
    """One MemberUp fanned out by the registry to 1,000 subscribers vs 1,000 bare tells."""
    latch = Latch()
    receivers = [CountingActor.start(latch) for _ in range(SUBSCRIBERS)]
    try:
        with registry_started() as registry:
            for receiver in receivers:
                subscribe = Subscribe(receiver, events=(MemberUp,), initial_state=InitialState.NONE)
                registry.tell(subscribe)
            registry.ask(GetClusterState(), timeout=ASK_TIMEOUT)  # every Subscribe is handled
            changes = iter(
                members_up((up_member(i),), version=i + 1) for i in range(sizes.fanout_repeats + 1)
            )
            event = MemberUp(version=1, member=up_member(0))

            def fan_out() -> None:
                registry.tell(next(changes))

            def tell_each() -> None:
                for receiver in receivers:
                    receiver.tell(event)

            time_until_all_received(latch, fan_out)  # warm-up
            time_until_all_received(latch, tell_each)
            fanouts: list[float] = []
            bare: list[float] = []
            for _ in range(sizes.fanout_repeats):
                fanouts.append(time_until_all_received(latch, fan_out))
                bare.append(time_until_all_received(latch, tell_each))
    finally:
        for receiver in receivers:
            receiver.stop(block=False)
        for receiver in receivers:
            receiver.actor_stopped.wait(ASK_TIMEOUT)
    figure = statistics.median(fanouts)
    base = statistics.median(bare)
    report("fanout_1000_subscribers_ms", figure)
    report("bare_tell_1000_actors_ms", base)
    report("fanout_vs_bare_ratio", figure / base)
    report("fanout_repeats_each", len(fanouts))


def microseconds_per_call(statement: str, names: dict[str, Any], sizes: Sizes) -> float:
    """Median over repeats of the time per execution of ``statement``, in microseconds."""
    timer = timeit.Timer(statement, globals=names)
    totals = timer.repeat(repeat=sizes.clock_repeats, number=sizes.clock_calls)
    return statistics.median(totals) / sizes.clock_calls * 1e6


def bench_vector_clock(sizes: Sizes, report: Report) -> None:
    """Compare and merge of two concurrent 10-entry clocks vs copying a 10-entry dict."""
    replicas = [f"member-{i:05d}" for i in range(CLOCK_ENTRIES)]
    timestamps = {replica: 10 + i for i, replica in enumerate(replicas)}
    mine = VectorClock(dict(timestamps))
    theirs = VectorClock(
        {replica: t + (1 if i % 2 else -1) for i, (replica, t) in enumerate(timestamps.items())}
    )
    names = {"mine": mine, "theirs": theirs, "timestamps": timestamps}
    base = microseconds_per_call("dict(timestamps)", names, sizes)
    compare = microseconds_per_call("mine.compare(theirs)", names, sizes)
    merge = microseconds_per_call("mine.merge(theirs)", names, sizes)
    report("vector_clock_compare_10_us", compare)
    report("vector_clock_merge_10_us", merge)
    report("dict_copy_10_us", base)
    report("vector_clock_compare_vs_dict_copy_ratio", compare / base)
    report("vector_clock_merge_vs_dict_copy_ratio", merge / base)


def bench_simulation(sizes: Sizes, report: Report) -> None:
    """The real step function in the simulator (benchmarks/simulate.py): random fault schedules,
    then gossip rounds from the heal of a 6 s half/half partition of a converged cluster until
    every member holds the same converged view, at 10 and 100 members."""
    logging.disable(logging.CRITICAL)  # the core warns on every suspicion
    try:
        schedules = random_schedules(sizes.simulation_schedules, members=None)
        outcomes = list(schedules.outcomes)
        steps = sum(outcome.steps for outcome in outcomes)
        report("simulation_schedules", len(outcomes))
        report("simulation_schedules_seconds", schedules.seconds)
        report("simulation_schedule_node_steps_per_s", steps / schedules.seconds)
        report(
            "simulation_schedules_without_survivors",
            sum(1 for outcome in outcomes if outcome.survivors == 0),
        )
        for n, seeds in (
            (10, sizes.simulation_heal_seeds_10),
            (100, sizes.simulation_heal_seeds_100),
        ):
            start = time.perf_counter()
            runs = heal_runs(n, seeds)
            elapsed = time.perf_counter() - start
            heals = [run.outcome for run in runs if run.outcome is not None]
            outcomes += heals
            rounds = [o.rounds_to_converge for o in heals if o.rounds_to_converge is not None]
            if rounds:
                report(f"simulation_heal_rounds_{n}_max", max(rounds))
                report(f"simulation_heal_rounds_{n}_median", float(statistics.median(rounds)))
            report(f"simulation_heal_{n}_seeds", seeds)
            report(f"simulation_heal_{n}_seconds", elapsed)
        report("simulation_violations", sum(len(outcome.violations) for outcome in outcomes))
    finally:
        logging.disable(logging.NOTSET)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller samples (< 20 s)")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    report = Report(TARGETS)
    report.environment()
    if hasattr(os, "sched_getaffinity"):
        report("cpus_usable", len(os.sched_getaffinity(0)))
    report("mode", "quick" if sizes is QUICK else "full")
    started = time.perf_counter()
    try:
        for bench in (bench_next_member, bench_fanout, bench_vector_clock, bench_simulation):
            gc.collect()
            bench(sizes, report)
    finally:
        pykka.ActorRegistry.stop_all()
    report("total_seconds", time.perf_counter() - started)
    report.check_targets()


if __name__ == "__main__":
    main()
