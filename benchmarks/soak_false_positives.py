"""Soak: false failure detections among idle member processes while every CPU is saturated.

Usage: ``python benchmarks/soak_false_positives.py [--seconds 300] [--quick]``. Starts 10 member
processes (default timings), waits until each sees all 10 UP, then runs one busy-loop process per
CPU for ``--seconds`` and counts the membership events that no crash justifies, from the members'
logs: every ``MemberUnreachable`` line, from the start of the cluster on, is a false positive
(target 0).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from cluster import (
    DEFAULT_TIMINGS,
    LoggedEvent,
    all_up_times,
    cpu_seconds,
    member_processes,
    our_member,
)
from report import Report

MEMBERS = 10
BUSY_LOOP = "while True: pass"


def count(events: list[LoggedEvent], name: str) -> int:
    """How many ``name`` events a member logged."""
    return sum(1 for event in events if event.event == name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=300.0, help="soak duration (default 300)")
    parser.add_argument("--quick", action="store_true", help="a 30 s soak")
    args = parser.parse_args(argv)
    seconds = 30.0 if args.quick else args.seconds
    if seconds <= 0:
        parser.error(f"--seconds must be positive, got {seconds:g}")
    report = Report({"false_positive_unreachable": 0})
    busy_loops = os.cpu_count() or 1
    report("members", MEMBERS)
    report("busy_loops", busy_loops)
    report("soak_seconds", seconds)
    with member_processes(MEMBERS, our_member(DEFAULT_TIMINGS)) as members:
        all_up_times(members)
        loops = [
            subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL)
            for _ in range(busy_loops)
        ]
        try:
            soak_started = time.time()
            loop_cpu = [cpu_seconds(loop.pid) for loop in loops]
            time.sleep(seconds)  # the soak itself
            elapsed = time.time() - soak_started
            loop_cpu = [cpu_seconds(loop.pid) - b for loop, b in zip(loops, loop_cpu, strict=True)]
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
        running = sum(member.process.poll() is None for member in members)
        events = [member.events() for member in members]
    report("busy_loop_cpu_percent_median", 100 * statistics.median(loop_cpu) / elapsed)
    unreachable = [count(log, "MemberUnreachable") for log in events]
    report("false_positive_unreachable", sum(unreachable))
    report("false_positive_unreachable_max_per_member", max(unreachable))
    report("false_positive_downed", sum(count(log, "MemberDowned") for log in events))
    report("members_still_running", running)
    report.check_targets()


if __name__ == "__main__":
    main()
