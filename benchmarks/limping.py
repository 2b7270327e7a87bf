"""Limping member: false failure detections about healthy members while one member keeps stalling.

Usage: ``python benchmarks/limping.py [--seconds 60] [--quick] [--stopped 2.5]``. Starts 5 member
processes (default timings), waits until each sees all 5 UP, then for ``--seconds`` stops one member
that is not the leader (SIGSTOP) for ``--stopped`` s of every ``--stopped`` + 0.5 s, lets it run for
good and waits for the cluster to settle. From the members' logs, from the start of the limping on:
every ``MemberUnreachable`` line about a member other than the limping one is false (target 0); the
limping member may be reported unreachable, or downed. A healthy member process that exits is a
failure too (target 0). The log lines behind each false event, and who accused whom (a member's own
``... is unreachable`` verdict), are printed.
"""

from __future__ import annotations

import argparse
import collections
import re
import signal
import time
from collections.abc import Sequence

from cluster import (
    DEFAULT_TIMINGS,
    LOG_EVENT,
    LoggedEvent,
    MemberProcess,
    all_up_times,
    log_time,
    member_processes,
    our_member,
)
from report import Report

MEMBERS = 5
RUNNING_S = 0.5  # the limping member runs this long between two stops
SETTLE_S = 15.0  # after the last SIGCONT, at least this long ...
QUIET_S = 5.0  # ... then until no member logged a line for this long ...
SETTLE_LIMIT_S = 60.0  # ... but no longer than this
# A member's own verdict (the Suspected effect): it reports ``Member [host]:port ...`` unreachable.
LOG_ACCUSED = re.compile(
    r"^(?P<time>\S+ \S+) WARNING\s+actors\.membership: Member \[(?P<host>[^\]]+)\]:(?P<port>\d+)"
    r" .* is unreachable$"
)


def limp(member: MemberProcess, seconds: float, stopped: float) -> int:
    """Stop ``member`` for ``stopped`` s of every ``stopped`` + RUNNING_S, for ``seconds``; the
    cycles."""
    deadline = time.time() + seconds
    cycles = 0
    try:
        while time.time() < deadline:
            member.process.send_signal(signal.SIGSTOP)
            time.sleep(min(stopped, max(0.0, deadline - time.time())))
            member.process.send_signal(signal.SIGCONT)
            cycles += 1
            time.sleep(RUNNING_S)
    finally:
        member.process.send_signal(signal.SIGCONT)  # no-op once it has exited
    return cycles


def settle(members: Sequence[MemberProcess]) -> float:
    """Wait SETTLE_S, then until no member logged a line for QUIET_S (at most SETTLE_LIMIT_S)."""
    started = time.time()
    time.sleep(SETTLE_S)  # a settle period, not a wait for a condition
    lines = -1
    quiet_since = time.time()
    while time.time() - quiet_since < QUIET_S and time.time() - started < SETTLE_LIMIT_S:
        now = sum(len(member.tail) for member in members)
        if now != lines:
            lines, quiet_since = now, time.time()
        time.sleep(0.5)
    return time.time() - started


def about(
    events: Sequence[LoggedEvent], name: str, since: float, until: float
) -> list[LoggedEvent]:
    """The ``name`` events logged from ``since`` until before ``until``."""
    return [event for event in events if event.event == name and since <= event.time < until]


def accusations(member: MemberProcess, since: float, until: float) -> list[tuple[str, str]]:
    """(accused address, log line) of each of ``member``'s own unreachable verdicts."""
    found = []
    for line in list(member.tail):
        if (match := LOG_ACCUSED.match(line)) and since <= log_time(match["time"]) < until:
            found.append((f"{match['host']}:{match['port']}", line))
    return found


def unreachable_lines(member: MemberProcess, since: float, until: float) -> list[tuple[str, str]]:
    """(address, log line) of each ``MemberUnreachable`` line ``member`` logged."""
    found = []
    for line in list(member.tail):
        match = LOG_EVENT.match(line)
        if (
            match
            and match["event"] == "MemberUnreachable"
            and since <= log_time(match["time"]) < until
        ):
            found.append((match["address"], line))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="limping time (default 60)")
    parser.add_argument("--quick", action="store_true", help="20 s of limping")
    parser.add_argument(
        "--stopped", type=float, default=2.5, help="seconds stopped in each cycle (default 2.5)"
    )
    args = parser.parse_args(argv)
    seconds = 20.0 if args.quick else args.seconds
    if seconds <= 0 or args.stopped <= 0:
        parser.error(f"--seconds and --stopped must be positive, got {seconds:g}, {args.stopped:g}")
    report = Report({"false_unreachable_healthy": 0, "healthy_exited": 0})
    report("members", MEMBERS)
    report("limp_seconds", seconds)
    report("limp_stopped_s_of_every_s", f"{args.stopped:g} of {args.stopped + RUNNING_S:g}")
    # Inherited by the members: when this script's process group is orphaned (its shell is gone,
    # as when it is started in the background), the kernel sends a stopped member SIGHUP, which
    # would kill the limping member at its first stop: a crash, not a limp.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with member_processes(MEMBERS, our_member(DEFAULT_TIMINGS), tail_lines=None) as members:
        all_up_times(members)
        limping = max(members, key=lambda member: member.port)  # the leader has the lowest
        healthy = [member for member in members if member is not limping]
        report("limping_member", limping.address)
        limp_started = time.time()
        report("limp_cycles", limp(limping, seconds, args.stopped))
        report("settle_s", settle(members))
        exited = {member.address: member.process.poll() for member in members}
        # Up to here: the members are killed on the way out, and a kill is found in milliseconds
        # (a refused dial), so lines logged after this are the teardown's, not the limp's.
        settled = time.time()
    unreachable: collections.Counter[tuple[str, str]] = collections.Counter()
    accused: collections.Counter[tuple[str, str]] = collections.Counter()
    false_lines: list[str] = []
    gone_about_limping = 0
    for member in members:
        for counter, found in (
            (unreachable, unreachable_lines(member, limp_started, settled)),
            (accused, accusations(member, limp_started, settled)),
        ):
            for target, line in found:
                counter[member.address, target] += 1
                if target != limping.address:
                    false_lines.append(f"{member.address}| {line}")
        for name in ("MemberDowned", "MemberRemoved"):
            gone_about_limping += sum(
                event.address == limping.address
                for event in about(member.events(), name, limp_started, settled)
            )
    for (observer, target), n in sorted(unreachable.items()):
        report("unreachable_logged", f"{observer} logged {target} unreachable {n} time(s)")
    for (accuser, target), n in sorted(accused.items()):
        report("accused", f"{accuser} itself found {target} unreachable {n} time(s)")
    false = sum(n for (_, target), n in unreachable.items() if target != limping.address)
    report("false_unreachable_healthy", false)
    report("unreachable_about_limping", sum(unreachable.values()) - false)
    report(
        "accusations_of_healthy", sum(n for (_, t), n in accused.items() if t != limping.address)
    )
    report("limping_downed", int(gone_about_limping > 0 or exited[limping.address] is not None))
    report("limping_exit_code", exited[limping.address])
    report("healthy_exited", sum(exited[member.address] is not None for member in healthy))
    for line in false_lines:
        report("false_event_log_line", line)
    report.check_targets()


if __name__ == "__main__":
    main()
