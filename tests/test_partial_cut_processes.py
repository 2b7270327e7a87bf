"""Five member processes, one of them cut from two of the other four (all other links fine).

Cut for longer than ``down_after``, only the cut member is downed (it exits 3) and the other four
stay UP in one view; cut for less, nobody is downed and all five are UP again once it heals.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import STEP_TIMEOUT, free_port

SCRIPT = Path(__file__).with_name("faulty_member.py")
EXIT_REMOVED = 3


class MemberProcess:
    """``faulty_member.py`` in its own process, once it has printed ``ready``."""

    def __init__(self, cluster: str, down_after: float, seeds: list[str]) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), cluster, port, str(down_after), *seeds],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.read_line(STEP_TIMEOUT) != "ready":
            self.close()
            raise RuntimeError(f"the member at {self.address} did not start")

    def read_line(self, timeout: float) -> str | None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().strip() if ready else None

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def view(self) -> dict[str, Any]:
        self.send("view")
        line = self.read_line(STEP_TIMEOUT)
        assert line, f"no view from {self.address}"
        view: dict[str, Any] = json.loads(line)
        return view

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STEP_TIMEOUT)


def start_cluster(down_after: float, size: int = 5) -> list[MemberProcess]:
    cluster = f"cut-{uuid.uuid4().hex[:8]}"
    members = [MemberProcess(cluster, down_after, [])]
    try:
        for _ in range(size - 1):
            members.append(MemberProcess(cluster, down_after, [members[0].address]))
        everyone = {m.address for m in members}
        wait_for_views(members, lambda view: all_up(view, everyone), "all five UP")
    except BaseException:
        for member in members:
            member.close()
        raise
    return members


def all_up(view: dict[str, Any], addresses: set[str]) -> bool:
    members = view["members"]
    return (
        set(members) == addresses
        and all(status == "UP" for status in members.values())
        and not view["unreachable"]
    )


def wait_for_views(
    members: list[MemberProcess], holds: Any, what: str, timeout: float = 3 * STEP_TIMEOUT
) -> None:
    """Ask each member for its view until ``holds(view)`` is true at every one of them."""
    deadline = time.monotonic() + timeout
    for member in members:
        while not holds(view := member.view()):
            assert time.monotonic() < deadline, f"{what}: not at {member.address}: {view}"
            select.select([], [], [], 0.2)  # between two asks of another process


@pytest.fixture
def cleanup() -> Iterator[list[MemberProcess]]:
    started: list[MemberProcess] = []
    yield started
    for member in started:
        member.close()


def cut(member: MemberProcess, peers: list[MemberProcess], heal: bool = False) -> None:
    """Block ``member`` and ``peers`` from each other both ways (or lift every block)."""
    for peer in peers:
        peer.send("block" if heal else f"block {member.address}")
    member.send("block" if heal else "block " + " ".join(p.address for p in peers))


@pytest.mark.timeout(180)
def test_a_member_cut_from_two_of_four_for_longer_than_down_after_is_the_only_one_downed(
    cleanup: list[MemberProcess],
) -> None:
    members = start_cluster(down_after=3.0)
    cleanup.extend(members)
    victim, others = members[-1], members[:-1]
    cut(victim, others[:2])
    assert victim.process.wait(3 * STEP_TIMEOUT) == EXIT_REMOVED
    rest = {m.address for m in others}
    wait_for_views(others, lambda view: all_up(view, rest), "the other four UP in one view")
    assert all(m.process.poll() is None for m in others), "a healthy member stopped"


@pytest.mark.timeout(180)
def test_a_cut_that_heals_before_down_after_downs_nobody(
    cleanup: list[MemberProcess],
) -> None:
    members = start_cluster(down_after=8.0)
    cleanup.extend(members)
    victim, others = members[-1], members[:-1]
    cut(victim, others[:2])
    wait_for_views(
        others[:2], lambda view: victim.address in view["unreachable"], "the cut is detected"
    )
    cut(victim, others[:2], heal=True)
    everyone = {m.address for m in members}
    wait_for_views(members, lambda view: all_up(view, everyone), "all five UP again")
    assert all(m.process.poll() is None for m in members), "a member stopped"
