"""Cluster benchmark: failure detection, joining, convergence and idle cost of real members.

Usage: ``python benchmarks/cluster.py [--quick] [--only idle,crash] [--idle-seconds S]``
(``--only`` runs some benches, by the names of ``BENCHES``). Prints ``name: value`` lines, then
one ``target_<name>: ok|MISSED`` line per target. Member processes are ``python -m actors
member`` on 127.0.0.1 with the CLI's default timings unless a figure says otherwise; each logs
every membership event on stderr with a millisecond timestamp, and the figures come from those
timestamps (all processes share this machine's clock), read by one thread per process as the
lines appear.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import pykka
from report import Report

import actors
from actors.cli.demo import free_port
from messages.events import ClusterEvent, MemberRemoved, MemberUp
from messages.membership.failure_detector import PhiAccrualFailureDetector
from messages.settings import Settings

T = TypeVar("T")

CLUSTER = "bench"
DEFAULT_TIMINGS: tuple[str, ...] = ()  # the CLI defaults: those of Settings
FAST_GOSSIP_TIMINGS = ("--gossip-interval", "0.2")
DEFAULTS = Settings()
JOIN_TIMEOUT = 60.0
# Our CLI's event lines, and benchmarks/kinship_member.py's in the same format.
LOG_EVENT = re.compile(
    r"^(?P<time>\S+ \S+) INFO\s+(?:actors\.cli\.main|kinship): "
    r"(?P<event>Member\w+)\s+(?P<address>\S+)"
)
LOG_JOINED = re.compile(
    r"^(?P<time>\S+ \S+) INFO\s+(?:actors\.membership|kinship): .* joined the cluster$"
)

TARGETS: dict[str, float] = {
    "crash_to_unreachable_s": 1.5,
    "crash_to_removed_s": 6.0,
    "join_10_processes_all_up_s": 5.0,
    "join_10_processes_all_up_fast_gossip_s": 1.5,
    "idle_member_cpu_percent": 2.0,
    "idle_member_cpu_percent_median": 2.0,
    "idle_member_rss_mb": 60.0,
    "idle_member_rss_mb_median": 60.0,
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Sample sizes and durations of one run."""

    crash_members: int
    crash_repeats: int
    crash_settle_s: float  # heartbeat history the detectors collect before the crash
    young_settle_s: float  # the same, for a cluster that has just formed
    join_repeats: int
    idle_settle_s: float
    idle_measure_s: float
    tcp_round_trips: int


FULL = Sizes(10, 3, 30.0, 3.0, 3, 10.0, 20.0, 500)
QUICK = Sizes(5, 1, 10.0, 3.0, 1, 3.0, 5.0, 100)


@dataclasses.dataclass(frozen=True)
class LoggedEvent:
    """One membership event line of a member's log."""

    time: float  # seconds since the epoch, from the line's timestamp
    event: str  # e.g. "MemberUp"
    address: str  # the member the event is about


# Finds, in a member's events so far, the time a condition first held (None: not yet).
EventCondition = Callable[[Sequence[LoggedEvent]], float | None]


def log_time(text: str) -> float:
    """Seconds since the epoch of a log timestamp such as ``2026-11-28 07:06:52,259``."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


class MemberProcess:
    """A ``python -m actors member`` process; a reader thread parses its log lines into events."""

    def __init__(
        self,
        port: int,
        command: Sequence[str],
        tail_lines: int | None = 40,
        log_path: str | None = None,
        log_to_file: bool = False,
    ) -> None:
        self.address = f"127.0.0.1:{port}"
        # every log line is also written to ``log_path``, when given; ``log_to_file``: the
        # member writes it there itself and the reader follows the file, so a member never
        # waits for this process to read a pipe (with 200 members on 2 cores it did, its
        # I/O thread blocked in a log write while heartbeats went unanswered)
        if log_to_file and log_path is None:
            raise ValueError("log_to_file needs a log_path")
        direct = log_path if log_to_file else None
        self._log = None if log_path is None or direct else open(log_path, "w")  # noqa: SIM115
        stderr: Any = subprocess.PIPE if direct is None else open(direct, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
        self.started_at = time.time()
        self.joined_at: float | None = None
        # its last ``tail_lines`` log lines (None: every line)
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._events: list[LoggedEvent] = []
        self._exited = False
        self._condition = threading.Condition()
        if direct is None:
            assert self.process.stderr is not None
            stream: Iterator[bytes] = self.process.stderr
        else:
            stderr.close()  # the child holds its own copy
            stream = self._follow(direct)
        threading.Thread(target=self._read, args=(stream,), name=self.address, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def _follow(self, path: str, poll: float = 0.2) -> Iterator[bytes]:
        """The lines of the file at ``path`` as the process writes them, until it has exited
        and every line is read."""
        pending = b""
        with open(path, "rb") as file:
            while True:
                exited = self.process.poll() is not None
                chunk = file.read()
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    yield from lines
                elif exited:
                    if pending:
                        yield pending
                    return
                else:
                    time.sleep(poll)

    def _read(self, stream: Iterable[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self.tail.append(line)
            if self._log is not None:
                self._log.write(line + "\n")
            if match := LOG_EVENT.match(line):
                event = LoggedEvent(log_time(match["time"]), match["event"], match["address"])
                with self._condition:
                    self._events.append(event)
                    self._condition.notify_all()
            elif match := LOG_JOINED.match(line):
                self.joined_at = log_time(match["time"])
        if self._log is not None:
            self._log.close()
        with self._condition:
            self._exited = True
            self._condition.notify_all()

    def events(self) -> list[LoggedEvent]:
        with self._condition:
            return list(self._events)

    def wait_for(self, condition: EventCondition, deadline: float) -> float:
        """The time ``condition`` first held; raises TimeoutError at ``deadline`` (time.time())."""
        with self._condition:
            while (found := condition(self._events)) is None:
                remaining = deadline - time.time()
                if self._exited or remaining <= 0:
                    why = "exited" if self._exited else "timed out"
                    raise TimeoutError(f"member {self.address} {why} waiting for a condition")
                self._condition.wait(remaining)
            return found

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the process stays, its ports still accept connections, nothing answers."""
        self.process.send_signal(signal.SIGSTOP)


def first_event(event: str, address: str) -> EventCondition:
    """Time of the first ``event`` about the member at ``address``."""

    def find(events: Sequence[LoggedEvent]) -> float | None:
        return next((e.time for e in events if e.event == event and e.address == address), None)

    return find


def up_count_reached(count: int) -> EventCondition:
    """Time at which ``count`` members were UP (and not removed) at once."""

    def find(events: Sequence[LoggedEvent]) -> float | None:
        up: set[str] = set()
        for e in events:
            if e.event == "MemberUp":
                up.add(e.address)
            elif e.event == "MemberRemoved":
                up.discard(e.address)
            if len(up) >= count:
                return e.time
        return None

    return find


# The command line of a member process listening on a port, with the ports of its seeds.
Launcher = Callable[[int, Sequence[int]], list[str]]


def our_member(timings: Sequence[str]) -> Launcher:
    """``python -m actors member`` with ``timings`` (CLI flags).

    ``-P``: the members run the ``actors`` this interpreter finds on its path (``PYTHONPATH``
    first), not the one in the working directory, which ``-m`` would put first: with
    ``PYTHONPATH=OTHER_TREE`` from a checkout, the members ran the checkout's code."""

    def command(port: int, seed_ports: Sequence[int]) -> list[str]:
        line = [sys.executable, "-P", "-m", "actors", "member", "--cluster", CLUSTER]
        line += ["--bind", f"127.0.0.1:{port}", *timings]
        for seed_port in seed_ports:
            line += ["--seed", f"127.0.0.1:{seed_port}"]
        return line

    return command


def kinship_member(python: str) -> Launcher:
    """``benchmarks/kinship_member.py`` run by ``python`` (an interpreter with kinship)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kinship_member.py")

    def command(port: int, seed_ports: Sequence[int]) -> list[str]:
        line = [python, script, "--bind", f"127.0.0.1:{port}"]
        for seed_port in seed_ports:
            line += ["--seed", f"127.0.0.1:{seed_port}"]
        return line

    return command


def kinship_python(given: str | None) -> str | None:
    """An interpreter that imports kinship: ``given``, else this one if it can; None if none."""
    for python in (given, sys.executable):
        if python is not None:
            probe = [python, "-c", "import kinship"]
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return python
    return None


@contextlib.contextmanager
def member_processes(
    count: int, launcher: Launcher, tail_lines: int | None = 40
) -> Iterator[list[MemberProcess]]:
    """``count`` member processes started together (the first is the seed); killed on exit.

    Each keeps its last ``tail_lines`` log lines (None: all of them)."""
    ports = [free_port() for _ in range(count)]
    members: list[MemberProcess] = []
    try:
        for port in ports:
            members.append(MemberProcess(port, launcher(port, ports[:1]), tail_lines))
        yield members
    finally:
        for member in members:
            member.kill()


def all_up_times(members: Sequence[MemberProcess]) -> list[float]:
    """For each member, when it saw every member of ``members`` UP."""
    deadline = time.time() + JOIN_TIMEOUT
    return [member.wait_for(up_count_reached(len(members)), deadline) for member in members]


# -- failure detection ---------------------------------------------------------------------------


def phi_crossing_s(settings: Settings) -> float:
    """Baseline: seconds after the last of regular heartbeats until phi reaches the threshold."""
    detector = PhiAccrualFailureDetector(
        threshold=settings.phi_threshold,
        acceptable_heartbeat_pause=settings.acceptable_heartbeat_pause,
        min_std_deviation=settings.min_std_deviation,
        first_heartbeat_estimate=settings.heartbeat_interval,
    )
    for beat in range(30):
        detector = detector.heartbeat(beat * settings.heartbeat_interval)
    last = 29 * settings.heartbeat_interval
    pause = 0.0
    while detector.is_available(last + pause):
        pause += 0.01
    return pause


def bench_crash(
    sizes: Sizes,
    report: Report,
    prefix: str,
    settle_s: float,
    launcher: Launcher,
    silent: bool = False,
) -> None:
    """SIGKILL one member (not the leader) of a cluster up for ``settle_s``; with ``silent``,
    SIGSTOP it instead, a crash that leaves no refused connection behind (a host gone).

    When do survivors react? The settle time matters: each detector's interval history starts with
    the first-heartbeat estimate, so a young cluster detects later than a settled one.
    """
    unreachable_medians: list[float] = []
    removed_medians: list[float] = []
    unreachable_all: list[float] = []
    removed_all: list[float] = []
    stable_after: list[float] = []
    for _ in range(sizes.crash_repeats):
        with member_processes(sizes.crash_members, launcher) as members:
            all_up_times(members)
            time.sleep(settle_s)  # a settle period, not a wait for a condition
            victim = max(members, key=lambda member: member.port)  # the leader has the lowest
            survivors = [member for member in members if member is not victim]
            crashed_at = time.time()
            if silent:
                victim.freeze()
            else:
                victim.kill()
            deadline = crashed_at + DEFAULTS.down_after + JOIN_TIMEOUT
            unreachable = [
                survivor.wait_for(first_event("MemberUnreachable", victim.address), deadline)
                - crashed_at
                for survivor in survivors
            ]
            removed = [
                survivor.wait_for(first_event("MemberRemoved", victim.address), deadline)
                - crashed_at
                for survivor in survivors
            ]
        unreachable_medians.append(statistics.median(unreachable))
        removed_medians.append(statistics.median(removed))
        unreachable_all += unreachable
        removed_all += removed
        stable_after += [r - u for u, r in zip(unreachable, removed, strict=True)]
    report(f"{prefix}settle_s", settle_s)
    report(f"{prefix}crash_to_unreachable_s", statistics.median(unreachable_medians))
    report(f"{prefix}crash_to_unreachable_first_s", min(unreachable_all))
    report(f"{prefix}crash_to_unreachable_max_s", max(unreachable_all))
    report(
        f"{prefix}crash_to_unreachable_runs_s", " ".join(f"{m:.2f}" for m in unreachable_medians)
    )
    report(f"{prefix}crash_to_removed_s", statistics.median(removed_medians))
    report(f"{prefix}crash_to_removed_max_s", max(removed_all))
    report(f"{prefix}crash_to_removed_runs_s", " ".join(f"{m:.2f}" for m in removed_medians))
    report(f"{prefix}unreachable_to_removed_s", statistics.median(stable_after))


# -- joining and convergence ---------------------------------------------------------------------


def processes_importing_actors_s(count: int) -> float:
    """Baseline: wall time for ``count`` processes started together to import ``actors``."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "-P", "-c", "import actors"], stdin=subprocess.DEVNULL)
        for _ in range(count)
    ]
    for process in processes:
        process.wait()
    return time.perf_counter() - started


def bench_join(sizes: Sizes, report: Report, name: str, launcher: Launcher) -> None:
    """10 member processes started together against one seed: from the last start to all UP."""
    totals: list[float] = []
    after_joins: list[float] = []
    for _ in range(sizes.join_repeats):
        with member_processes(10, launcher) as members:
            last_started = members[-1].started_at
            all_up = max(all_up_times(members))
            last_joined = max(member.joined_at or all_up for member in members)
        totals.append(all_up - last_started)
        after_joins.append(all_up - last_joined)
    report(f"{name}_s", statistics.median(totals))
    report(f"{name}_max_s", max(totals))
    report(f"{name}_after_last_join_s", statistics.median(after_joins))


class UpWatch:
    """Event callback of one node: notes when ``count`` members are UP at once."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._up: set[str] = set()
        self.reached = threading.Event()
        self.reached_at = 0.0

    def __call__(self, event: ClusterEvent) -> None:
        if isinstance(event, MemberUp):
            self._up.add(event.member.uuid)
        elif isinstance(event, MemberRemoved):
            self._up.discard(event.member.uuid)
        if len(self._up) >= self._count and not self.reached.is_set():
            self.reached_at = time.perf_counter()
            self.reached.set()


def bench_converge_in_process(report: Report, count: int = 30) -> None:
    """``count`` members in this process (port 0), default timings: until all see all UP."""
    cluster = "bench-in-process"
    nodes: list[actors.Node] = []
    recorders: list[pykka.ActorRef[Any]] = []
    watches: list[UpWatch] = []
    lock = threading.Lock()

    def start(seeds: Sequence[str]) -> None:
        node = actors.start_member(cluster_name=cluster, port=0, seeds=seeds)
        watch = UpWatch(count)
        with lock:
            nodes.append(node)
            watches.append(watch)
        recorder = actors.record_events(node.listeners, watch)
        with lock:
            recorders.append(recorder)

    started = time.perf_counter()
    try:
        start(())
        seed = str(nodes[0].address)
        with ThreadPoolExecutor(max_workers=count - 1) as pool:
            joins: list[Future[None]] = [pool.submit(start, (seed,)) for _ in range(count - 1)]
            wait(joins)
        for join in joins:
            join.result()  # raises the first join error, if any
        last_joined = time.perf_counter()
        for watch in watches:
            if not watch.reached.wait(JOIN_TIMEOUT):
                raise TimeoutError(f"a node did not see {count} members UP")
        converged = max(watch.reached_at for watch in watches)
    finally:
        for recorder in recorders:
            recorder.stop()
        for node in nodes:
            node.stop()
    report(f"converge_{count}_in_process_s", converged - started)
    report(f"converge_{count}_in_process_after_last_join_s", converged - last_joined)


# -- idle cost -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, field: str) -> int:
    """A number of /proc/PID/status, e.g. ``VmRSS`` (KiB) or ``Threads``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def wakeups(pid: int) -> int:
    """Context switches of every thread of process ``pid`` so far: each time one of its threads
    went to sleep (voluntary) or was preempted, a wake-up to pay for (an idle member's cost)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                lines = status.readlines()
        except FileNotFoundError:
            continue  # a thread that has just ended (a name lookup's, say)
        for line in lines:
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MiB."""
    return proc_status(pid, "VmRSS") / 1024


def idle_python(measure: Callable[[int], T]) -> T:
    """Baseline: ``measure(pid)`` of a Python process that has imported ``actors`` and idles."""
    code = "import actors, sys; print(flush=True); sys.stdin.read()"
    process = subprocess.Popen(
        [sys.executable, "-P", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        return measure(process.pid)
    finally:
        process.kill()
        process.wait()


def bench_idle(sizes: Sizes, report: Report, prefix: str, launcher: Launcher) -> None:
    """CPU share, memory and threads of the members of a settled 10-member cluster."""
    with member_processes(10, launcher) as members:
        all_up_times(members)
        time.sleep(sizes.idle_settle_s)  # a settle period, not a wait for a condition
        pids = [member.process.pid for member in members]
        before = [cpu_seconds(pid) for pid in pids]
        switches = [wakeups(pid) for pid in pids]
        started = time.monotonic()
        time.sleep(sizes.idle_measure_s)  # the measurement window
        elapsed = time.monotonic() - started
        percents = [
            100 * (cpu_seconds(pid) - b) / elapsed for pid, b in zip(pids, before, strict=True)
        ]
        rates = [(wakeups(pid) - w) / elapsed for pid, w in zip(pids, switches, strict=True)]
        sizes_mb = [rss_mb(pid) for pid in pids]
        threads = [proc_status(pid, "Threads") for pid in pids]
    report(f"{prefix}idle_measure_s", elapsed)
    report(f"{prefix}idle_member_cpu_percent", percents[0])  # the seed
    report(f"{prefix}idle_member_cpu_percent_median", statistics.median(percents))
    report(f"{prefix}idle_member_cpu_percent_max", max(percents))
    report(f"{prefix}idle_member_wakeups_per_s_median", statistics.median(rates))
    report(f"{prefix}idle_member_rss_mb", sizes_mb[0])
    report(f"{prefix}idle_member_rss_mb_median", statistics.median(sizes_mb))
    report(f"{prefix}idle_member_rss_mb_max", max(sizes_mb))
    report(f"{prefix}idle_member_threads_median", statistics.median(threads))


# -- baselines -----------------------------------------------------------------------------------


def tcp_connect_round_trip_ms(count: int) -> float:
    """Baseline: median of loopback TCP connect + 1-byte round trip + close, in milliseconds."""
    listener = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        for _ in range(count):
            connection, _ = listener.accept()
            with connection:
                connection.sendall(connection.recv(1))

    server = threading.Thread(target=echo, daemon=True)
    server.start()
    samples = []
    with listener:
        for _ in range(count):
            start = time.perf_counter()
            with socket.create_connection(listener.getsockname()[:2]) as client:
                client.sendall(b"x")
                client.recv(1)
            samples.append((time.perf_counter() - start) * 1000)
        server.join()
    return statistics.median(samples)


def baselines(sizes: Sizes, report: Report) -> None:
    """The figures the others are read against: TCP, imports, phi, an idle Python process."""
    report("baseline_tcp_connect_round_trip_ms", tcp_connect_round_trip_ms(sizes.tcp_round_trips))
    report("baseline_process_importing_actors_s", processes_importing_actors_s(1))
    report("baseline_10_processes_importing_actors_s", processes_importing_actors_s(10))
    report("crash_members", sizes.crash_members)
    report("crash_repeats", sizes.crash_repeats)
    report("down_after_s", DEFAULTS.down_after)
    report("baseline_phi_crossing_after_last_heartbeat_s", phi_crossing_s(DEFAULTS))
    report("baseline_idle_python_importing_actors_rss_mb", idle_python(rss_mb))


# Every bench by name, in the order a full run takes them (``--only`` picks some).
BENCHES = (
    "baselines",
    "crash",
    "young",
    "silent",
    "join",
    "join_fast",
    "converge",
    "idle",
    "kinship_crash",
    "kinship_silent",
    "kinship_idle",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs (~1 min)")
    parser.add_argument(
        "--kinship-python",
        help="an interpreter with kinship installed, for the side-by-side figures "
        "(default: this one, if it imports kinship; none: the kinship figures are skipped)",
    )
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        default=None,
        help=f"run only these benches, comma-separated, e.g. idle,crash (of: {', '.join(BENCHES)})",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="the idle measurement window (default: 20 s, 5 s with --quick)",
    )
    args = parser.parse_args(argv)
    only = BENCHES if args.only is None else args.only
    if unknown := [name for name in only if name not in BENCHES]:
        parser.error(f"unknown bench {', '.join(unknown)}: choose among {', '.join(BENCHES)}")
    sizes = QUICK if args.quick else FULL
    if args.idle_seconds is not None:
        sizes = dataclasses.replace(sizes, idle_measure_s=args.idle_seconds)
    ours = our_member(DEFAULT_TIMINGS)
    report = Report(TARGETS)
    report.environment()
    report("mode", "quick" if args.quick else "full")
    report("benches", ",".join(only))
    started = time.perf_counter()
    benches: dict[str, Callable[[], None]] = {
        "baselines": lambda: baselines(sizes, report),
        "crash": lambda: bench_crash(sizes, report, "", sizes.crash_settle_s, ours),
        "young": lambda: bench_crash(sizes, report, "young_cluster_", sizes.young_settle_s, ours),
        "silent": lambda: bench_crash(
            sizes, report, "silent_", sizes.crash_settle_s, ours, silent=True
        ),
        "join": lambda: bench_join(sizes, report, "join_10_processes_all_up", ours),
        "join_fast": lambda: bench_join(
            sizes, report, "join_10_processes_all_up_fast_gossip", our_member(FAST_GOSSIP_TIMINGS)
        ),
        "converge": lambda: bench_converge_in_process(report),
        "idle": lambda: bench_idle(sizes, report, "", ours),
    }
    if any(name.startswith("kinship") for name in only):
        peer = kinship_python(args.kinship_python)
        if peer is None:
            report("kinship", "not installed (pip install kinship, or --kinship-python PATH)")
        else:
            # kinship's events: suspect stands for unreachable, dead for removed (kinship_member.py)
            theirs = kinship_member(peer)
            benches |= {
                "kinship_crash": lambda: bench_crash(
                    sizes, report, "kinship_", sizes.crash_settle_s, theirs
                ),
                "kinship_silent": lambda: bench_crash(
                    sizes, report, "kinship_silent_", sizes.crash_settle_s, theirs, silent=True
                ),
                "kinship_idle": lambda: bench_idle(sizes, report, "kinship_", theirs),
            }
    for name in BENCHES:
        if name in only and name in benches:
            try:
                benches[name]()
            except TimeoutError as error:
                report("error", error)
    report("total_seconds", time.perf_counter() - started)
    report.check_targets()


if __name__ == "__main__":
    main()
