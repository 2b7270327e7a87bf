"""The ``membership`` CLI as real processes (``python -m actors ...``) on 127.0.0.1.

Member processes log each event on stderr; a reader thread per output stream collects the lines,
and the tests wait (with deadlines) for the lines they expect instead of sleeping.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.processes import Child, Lines, cli_command, run_cli, start_cli

import actors
from actors.cli.demo import free_port
from actors.cli.main import _JOIN_GRACE, EXIT_REMOVED
from messages.events import ClusterEvent, MemberEvent, MemberRemoved, MemberUnreachable, MemberUp

CLUSTER = "cli-test"
FAST_TIMINGS = (
    "--gossip-interval",
    "0.2",
    "--heartbeat-interval",
    "0.2",
    "--down-after",
    "1.5",
    "--acceptable-pause",
    "0.6",
)
STEP_TIMEOUT = 20.0


def event_line(event: str, address: str) -> str:
    """Pattern of the log line a member writes for ``event`` about the member at ``address``."""
    return rf"INFO\s+actors\.cli\.main: {event}\s+{re.escape(address)}\s"


class Member(Child):
    """A member process on 127.0.0.1:``port`` joining through the seed at ``seed_port``."""

    def __init__(self, port: int, seed_port: int, extra: tuple[str, ...] = ()) -> None:
        self.port = port
        self.address = f"127.0.0.1:{port}"
        args = ("member", "--cluster", CLUSTER, "--bind", self.address)
        super().__init__(
            cli_command(*args, "--seed", f"127.0.0.1:{seed_port}", *FAST_TIMINGS, *extra),
            f"member {self.address}",
        )
        self._uuid: str | None = None

    @property
    def log(self) -> Lines:
        return self.stderr

    @property
    def uuid(self) -> str:
        """This member's uuid, from its ``running (uuid ...)`` log line."""
        if self._uuid is None:
            line = self.log.line(self.log.wait_for(r"running \(uuid "))
            match = re.search(r"running \(uuid (\S+)\)", line)
            assert match is not None
            self._uuid = match.group(1)
        return self._uuid

    def wait_for_event(self, event: str, member: Member) -> int:
        return self.log.wait_for(event_line(event, member.address))

    def logged_event(self, event: str, member: Member) -> bool:
        return self.log.index(event_line(event, member.address)) is not None


class Processes:
    """Starts CLI processes and kills whatever is still running at the end."""

    def __init__(self) -> None:
        self._started: list[Child] = []

    def member(self, seed: Member | None = None, extra: tuple[str, ...] = ()) -> Member:
        """A member joining through ``seed``; without one, it forms a cluster of its own.
        ``extra`` arguments override the fast timings."""
        port = free_port()
        member = Member(port, port if seed is None else seed.port, extra)
        self._started.append(member)
        return member

    def cli(self, *args: str) -> Child:
        cli = start_cli(*args)
        self._started.append(cli)
        return cli

    def cluster(self, size: int, extra: tuple[str, ...] = ()) -> list[Member]:
        """``size`` members (the first is the seed), once each has logged every one as UP."""
        seed = self.member(extra=extra)
        members = [seed, *(self.member(seed, extra) for _ in range(size - 1))]
        for observer in members:
            for member in members:
                observer.wait_for_event("MemberUp", member)
        return members

    def kill_all(self) -> None:
        for cli in self._started:
            cli.stop()


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        started.kill_all()


def has_event(kind: type[MemberEvent], address: str) -> Callable[[tuple[ClusterEvent, ...]], bool]:
    return lambda events: any(
        isinstance(event, kind) and str(event.member.address) == address for event in events
    )


def event_index(events: tuple[ClusterEvent, ...], kind: type[MemberEvent], address: str) -> int:
    return next(
        i
        for i, event in enumerate(events)
        if isinstance(event, kind) and str(event.member.address) == address
    )


@pytest.mark.timeout(90)
def test_crash_join_and_leave_are_seen_by_every_member_and_a_client(processes: Processes) -> None:
    seed, survivor, victim = processes.cluster(3)
    client = actors.start_client(
        cluster_name=CLUSTER, members=[seed.address, survivor.address], join_timeout=STEP_TIMEOUT
    )
    try:
        recorder = actors.record_events(client.listeners)
        actors.wait_until(
            recorder,
            lambda events: all(has_event(MemberUp, m.address)(events) for m in (seed, victim)),
            STEP_TIMEOUT,
        )

        # SIGKILL: unreachable, then removed, at the client and at every survivor.
        victim.signal(signal.SIGKILL)
        events = actors.wait_until(recorder, has_event(MemberRemoved, victim.address), STEP_TIMEOUT)
        assert event_index(events, MemberUnreachable, victim.address) < event_index(
            events, MemberRemoved, victim.address
        )
        for member in (seed, survivor):
            unreachable = member.wait_for_event("MemberUnreachable", victim)
            assert unreachable < member.wait_for_event("MemberRemoved", victim)

        # A new member process: UP everywhere.
        fresh = processes.member(seed)
        actors.wait_until(recorder, has_event(MemberUp, fresh.address), STEP_TIMEOUT)
        for observer in (seed, survivor, fresh):
            for member in (seed, survivor, fresh):
                observer.wait_for_event("MemberUp", member)

        # SIGTERM: a graceful leave, exit 0, removed everywhere, never unreachable.
        leaver = survivor
        leaver.signal(signal.SIGTERM)
        assert leaver.wait() == 0
        events = actors.wait_until(recorder, has_event(MemberRemoved, leaver.address), STEP_TIMEOUT)
        for member in (seed, fresh):
            member.wait_for_event("MemberRemoved", leaver)
        assert not has_event(MemberUnreachable, leaver.address)(events)
        for member in (seed, leaver, fresh):
            assert not member.logged_event("MemberUnreachable", leaver), member.log.snapshot()
        assert "leaving the cluster" in "\n".join(leaver.log.snapshot())
    finally:
        client.stop()


@pytest.mark.timeout(90)
def test_a_member_paused_past_its_removal_exits_3_when_it_resumes(processes: Processes) -> None:
    seed, other, paused = processes.cluster(3)

    paused.signal(signal.SIGSTOP)
    try:
        removed_at = {
            member: member.wait_for_event("MemberRemoved", paused) for member in (seed, other)
        }
    finally:
        paused.signal(signal.SIGCONT)

    assert paused.wait() == EXIT_REMOVED
    log = "\n".join(paused.log.snapshot())
    assert (
        f"is out of the cluster (removed): a member answered: member {paused.uuid} was removed"
        in log
    )
    assert "exit code 3" in log
    table = run_cli("members", "--cluster", CLUSTER, "--connect", seed.address, "--json")
    assert {row["address"] for row in json.loads(table.stdout)} == {seed.address, other.address}
    for member, index in removed_at.items():
        later = member.log.snapshot()[index + 1 :]
        assert not [line for line in later if paused.address in line], later


@pytest.mark.timeout(90)
def test_a_member_paused_for_less_than_down_after_is_reachable_again(processes: Processes) -> None:
    members = processes.cluster(3, extra=("--down-after", "6"))
    seed, other, paused = members

    paused.signal(signal.SIGSTOP)
    try:
        seed.wait_for_event("MemberUnreachable", paused)
    finally:
        paused.signal(signal.SIGCONT)

    for member in (seed, other):
        member.wait_for_event("MemberReachable", paused)
    assert paused.process.poll() is None
    for member in members:
        assert member.log.index(r"MemberDowned|MemberRemoved") is None, member.log.snapshot()


def test_members_prints_the_table_and_json(processes: Processes) -> None:
    members = processes.cluster(2)
    connect = ("--cluster", CLUSTER, "--connect", members[1].address)

    table = run_cli("members", *connect)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "address" in lines[0]
    assert "status" in lines[0]
    for member in members:
        row = next(line for line in lines if member.uuid in line)
        assert member.address in row
        assert " UP " in row
    assert sum(line.startswith("*") for line in lines) == 1  # the leader

    listing = run_cli("members", *connect, "--json")
    assert listing.returncode == 0, listing.stderr
    rows = json.loads(listing.stdout)
    assert {(row["uuid"], row["address"], row["status"]) for row in rows} == {
        (member.uuid, member.address, "UP") for member in members
    }
    assert all(row["reachable"] for row in rows)
    lowest = min(members, key=lambda member: member.port)
    assert [row["address"] for row in rows if row["leader"]] == [lowest.address]


@pytest.mark.timeout(60)
def test_watch_prints_json_lines_as_events_happen_and_exits_on_sigint(
    processes: Processes,
) -> None:
    seed, other = processes.cluster(2)
    watch = processes.cli("watch", "--cluster", CLUSTER, "--connect", seed.address, "--json")
    for member in (seed, other):
        watch.stdout.wait_for(rf'"event": "MemberUp".*"address": "{re.escape(member.address)}"')

    watch.stdout.wait_for(
        rf'"event": "ClientConnected".*"state": "CONNECTED", "address": "{re.escape(seed.address)}"'
    )

    fresh = processes.member(seed)
    index = watch.stdout.wait_for(rf'"event": "MemberUp".*"address": "{re.escape(fresh.address)}"')
    line: dict[str, Any] = json.loads(watch.stdout.line(index))
    assert {"event", "uuid", "address", "status", "time"} <= line.keys()
    assert line["uuid"] == fresh.uuid
    assert line["status"] == "UP"
    assert abs(line["time"] - time.time()) < STEP_TIMEOUT
    for text in watch.stdout.snapshot():
        json.loads(text)  # every line of the output is JSON

    watch.signal(signal.SIGINT)
    assert watch.wait() == 0
    assert "Traceback" not in "\n".join(watch.stderr.snapshot())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("member", "--cluster", CLUSTER, "--bind", "nonsense"), "cannot listen on nonsense"),
        (("member", "--cluster", CLUSTER, "--bind", "127.0.0.1:99999"), "outside 0..65535"),
        (
            ("member", "--cluster", CLUSTER, "--bind", "127.0.0.1:0", "--attribute", "novalue"),
            "attribute must be KEY=VALUE, got 'novalue'",
        ),
        (
            ("member", "--cluster", CLUSTER, "--bind", "127.0.0.1:0", "--down-after", "-1"),
            "--down-after: must be positive",
        ),
        (("members", "--cluster", CLUSTER, "--connect", "localhost:port"), "port must be a number"),
        (("watch", "--cluster", CLUSTER), "--connect"),
    ],
    ids=[
        "unresolvable-bind",
        "port-range",
        "attribute",
        "negative-timing",
        "connect",
        "no-connect",
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(
    args: tuple[str, ...], message: str
) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_cluster_name_is_refused_clearly(processes: Processes) -> None:
    (member,) = processes.cluster(1)
    for command in ("members", "watch"):
        result = run_cli(command, "--cluster", "other", "--connect", member.address)
        assert result.returncode != 0, command
        assert "cluster name mismatch" in result.stderr, command
        assert "Traceback" not in result.stderr, command
    assert member.process.poll() is None  # the member is not bothered by it


@pytest.mark.parametrize(("command", "timeout"), [("members", None), ("watch", "1")])
def test_pointed_where_nothing_listens_it_fails_in_seconds_and_says_why(
    command: str, timeout: str | None
) -> None:
    address = f"127.0.0.1:{free_port()}"
    patience = () if timeout is None else ("--timeout", timeout)
    started = time.monotonic()

    result = run_cli(command, "--cluster", CLUSTER, "--connect", address, *patience)

    assert time.monotonic() - started < (5 if timeout is None else 1) + 5
    assert result.returncode == 1
    assert f"cannot connect to {address}" in result.stderr
    assert "ECONNREFUSED" in result.stderr
    assert "Traceback" not in result.stderr


def session_processes(session_id: int) -> list[int]:
    """Pids of the processes still alive (not zombies) in session ``session_id``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has gone meanwhile
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.timeout(150)
def test_demo_runs_to_completion_and_leaves_no_process_behind() -> None:
    # the demo and its member processes: one session to inspect
    demo = start_cli("demo", start_new_session=True)
    try:
        assert demo.wait(120) == 0, demo.stderr.all()
        stdout = demo.stdout.all()
        for step in (
            "== starting 4 members",
            "== SIGKILL member",
            "MemberUnreachable",
            "MemberRemoved",
            "== starting a fresh member",
            "== SIGTERM member",
            "exited with code 0; seen unreachable: False",
            "== final member table",
            "== stopping the remaining members",
        ):
            assert step in stdout, step
        assert stdout.rstrip().endswith("demo done")
        assert session_processes(demo.process.pid) == []
    finally:
        demo.stop()
        for pid in session_processes(demo.process.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_member_given_join_timeout_exits_1_when_no_seed_answers_in_time() -> None:
    """Without ``--join-timeout`` a member tries its seeds until one answers (issue 18); with
    it, it gives up after that long and exits 1, saying which seeds it tried."""
    seed = f"127.0.0.1:{free_port()}"
    me = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    result = run_cli(
        "member",
        *("--cluster", CLUSTER, "--bind", me, "--seed", seed, "--join-timeout", "1"),
        timeout=50.0,  # a process start on a loaded 2-core machine can take many seconds
    )

    assert time.monotonic() - started < 1 + 45  # it ends by itself, long before pytest's 60 s
    assert result.returncode == 1
    assert "no seed answered within 1 s" in result.stderr
    assert seed in result.stderr
    assert "Traceback" not in result.stderr


def test_a_member_whose_seeds_never_answer_stops_soon_after_sigterm() -> None:
    """Joining without end, a signal asks for a leave once joined; a join that has not ended
    within the CLI's grace ends the process as a second signal would (never a member a
    supervisor must SIGKILL)."""
    seed = f"127.0.0.1:{free_port()}"
    me = f"127.0.0.1:{free_port()}"
    with start_cli("member", *("--cluster", CLUSTER, "--bind", me, "--seed", seed)) as member:
        member.stderr.wait_for("Join attempt 2 via", timeout=45.0)  # a slow start on 2 cores
        member.signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert member.wait(30.0) == -signal.SIGTERM
        assert time.monotonic() - signalled >= _JOIN_GRACE
        assert "Traceback" not in member.stderr.all()
