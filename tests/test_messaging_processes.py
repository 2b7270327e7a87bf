"""Cluster messaging with a member in another process: request/reply, errors, a member killed with
SIGKILL mid-stream, flow control under a stopped (SIGSTOP) receiver, heartbeats under a burst."""

from __future__ import annotations

import contextlib
import pathlib
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_helpers import (
    STEP_TIMEOUT,
    ClusterHarness,
    WatchedNode,
    free_port,
    poll_until,
    up_uuids,
)
from remote_member import CLUSTER, Blob, Ping, Pong, register_types

from messages.address import Address
from messages.events import MemberRemoved, MemberUnreachable
from messages.wire.remote import (
    Backpressure,
    MemberGone,
    NoSuchActor,
    RemoteActorFailed,
    RemoteTimeout,
    UnknownMessageType,
)

SCRIPT = pathlib.Path(__file__).with_name("remote_member.py")
PATIENT = {"acceptable_heartbeat_pause": 30.0, "down_after": 60.0}
"""For a receiver stopped on purpose: not declared unreachable or downed while it is."""
GATE_BYTES = 4 << 20


register_types()


class RemoteMember:
    """``remote_member.py`` in its own process on 127.0.0.1, once it has printed ``ready``."""

    def __init__(self, *options: str, timings: dict[str, float]) -> None:
        self.port = free_port()
        self.address = Address("127.0.0.1", self.port)
        args = [f"{key}={value}" for key, value in timings.items()]
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self.port), *options, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], STEP_TIMEOUT)
        if not ready or self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the remote member did not start")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def close(self) -> None:
        """Leave (stdin closed), or be killed if it does not exit in time."""
        self.process.send_signal(signal.SIGCONT)
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


Pair = tuple[WatchedNode, RemoteMember]


def start_pair(
    harness: ClusterHarness, *options: str, timings: dict[str, float], **local: Any
) -> Pair:
    """A remote member, and a local one joined to it; both up in the local view."""
    remote = RemoteMember(*options, timings=timings)
    try:
        node = harness.start(seeds=[remote.address], **timings, **local)
        node.wait(lambda events: len(up_uuids(events)) == 2, STEP_TIMEOUT, "both members up")
    except BaseException:
        remote.close()
        raise
    return node, remote


@pytest.fixture
def harness() -> Iterator[ClusterHarness]:
    with ClusterHarness(cluster_name=CLUSTER) as built:
        yield built


@pytest.fixture
def pair(harness: ClusterHarness) -> Iterator[Pair]:
    node, remote = start_pair(harness, timings={})
    yield node, remote
    remote.close()


def gate_full(node: WatchedNode, blob: Blob) -> bool:
    """The node's flow gate has no room for one more ``blob``."""
    _, waiting = node.node.gate.in_flight
    return waiting + len(blob.data) > GATE_BYTES


def test_request_reply_and_every_error_across_processes(pair: Pair) -> None:
    node, remote = pair
    echo = node.node.remote("echo", member=remote.address)
    assert echo.ask(Ping(7), timeout=5) == Pong(7)
    assert echo.ask({"plain": [1, 2]}, timeout=5) == {"plain": [1, 2]}
    with pytest.raises(RemoteActorFailed, match="ValueError: negative: -1"):
        echo.ask(Ping(-1), timeout=5)
    with pytest.raises(NoSuchActor):
        node.node.remote("nobody", member=remote.address).ask(Ping(1), timeout=5)


def test_a_type_the_receiver_has_not_registered_comes_back_as_a_clear_error(
    harness: ClusterHarness,
) -> None:
    node, remote = start_pair(harness, "--without-types", timings={})
    try:
        echo = node.node.remote("echo", member=remote.address)
        with pytest.raises(UnknownMessageType, match=r"remote_member\.Ping"):
            echo.ask(Ping(1), timeout=5)
        assert echo.ask("still fine", timeout=5) == "still fine"
    finally:
        remote.close()


def test_every_ask_outstanding_at_a_sigkill_fails_within_its_timeout(
    harness: ClusterHarness, pair: Pair
) -> None:
    node, remote = pair
    harness.start(seeds=[remote.address])  # three members: the two left keep the majority
    node.wait(lambda events: len(up_uuids(events)) == 3, STEP_TIMEOUT, "three members up")
    timeout = 8.0
    slow = node.node.remote("slow", member=remote.address)
    sent_at = time.monotonic()
    futures = [slow.ask(Ping(n), timeout=timeout, block=False) for n in range(200)]
    assert futures[0].get(timeout=STEP_TIMEOUT) == Pong(0)  # the stream is flowing
    remote.signal(signal.SIGKILL)
    outcomes: list[Any] = []
    for future in futures:
        try:
            outcomes.append(future.get(timeout=timeout + 2.0))
        except (MemberGone, RemoteTimeout) as error:
            outcomes.append(error)
    took = time.monotonic() - sent_at
    failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    answered = [outcome for outcome in outcomes if isinstance(outcome, Pong)]
    assert failed, "the member was killed before it could answer them all"
    assert len(failed) + len(answered) == len(futures)
    assert took < timeout + 2.0
    # The cluster removes it within the timeout, and the asks then fail at once (not by timing out).
    assert all(isinstance(error, MemberGone) for error in failed), failed[:3]
    node.wait(
        lambda events: any(isinstance(e, MemberRemoved) for e in events), STEP_TIMEOUT, "removal"
    )


def test_a_stopped_receiver_raises_backpressure_and_loses_nothing_once_it_resumes(
    harness: ClusterHarness,
) -> None:
    node, remote = start_pair(
        harness,
        timings=PATIENT,
        max_bytes_in_flight=GATE_BYTES,
        block_on_backpressure=False,
    )
    try:
        counter = node.node.remote("count", member=remote.address)
        blob = Blob(b"x" * (256 << 10))  # the kernel's socket buffers hold a few dozen at most
        remote.signal(signal.SIGSTOP)
        sent = 0
        refused: Backpressure | None = None
        while refused is None and sent < 1_000:
            try:
                counter.tell(blob)
                sent += 1
            except Backpressure as error:
                refused = error
        assert refused is not None
        assert "the receivers do not keep up" in str(refused)
        assert sent < 1_000
        assert gate_full(node, blob)
        remote.signal(signal.SIGCONT)  # heals: the backlog drains, nothing was dropped
        poll_until(lambda: node.node.gate.in_flight == (0, 0), "an empty gate")
        poll_until(lambda: counter.ask("count", timeout=5) == sent, f"{sent} blobs counted")
    finally:
        remote.close()


def test_by_default_a_tell_waits_for_room(harness: ClusterHarness) -> None:
    node, remote = start_pair(
        harness,
        timings=PATIENT,
        max_bytes_in_flight=GATE_BYTES,
    )
    try:
        counter = node.node.remote("count", member=remote.address)
        blob = Blob(b"x" * (256 << 10))
        total = 200
        done = threading.Event()

        def tell_all() -> None:
            for _ in range(total):
                counter.tell(blob)
            done.set()

        remote.signal(signal.SIGSTOP)
        sender = threading.Thread(target=tell_all, name="blocked-sender")
        sender.start()
        poll_until(lambda: gate_full(node, blob), "a full gate")
        assert not done.is_set()  # the sender waits at the gate instead of queueing more
        remote.signal(signal.SIGCONT)
        sender.join(STEP_TIMEOUT)
        assert done.is_set()
        poll_until(lambda: counter.ask("count", timeout=5) == total, f"{total} blobs counted")
    finally:
        remote.close()


def test_a_burst_of_messages_never_makes_a_member_unreachable(pair: Pair) -> None:
    node, remote = pair
    counter = node.node.remote("count", member=remote.address)
    blob = Blob(b"x" * 1024)
    burst = 3 * node.node.settings.acceptable_heartbeat_pause  # heartbeats must get through
    sent = 0
    deadline = time.monotonic() + burst
    while time.monotonic() < deadline:  # the burst under test: send for ``burst`` seconds
        counter.tell(blob)
        sent += 1
    poll_until(lambda: counter.ask("count", timeout=10) == sent, f"{sent} blobs counted")
    unreachable = [e for e in node.events() if isinstance(e, MemberUnreachable)]
    assert not unreachable, f"during a {burst:g} s burst of {sent} messages: {unreachable}"
