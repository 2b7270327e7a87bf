"""Backpressure end to end: a slow actor's member stops reading, its sender waits, none is lost."""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, WatchedNode, poll_until

from actors.transport.backlog import Backlog
from messages.events import MemberUnreachable
from messages.wire.remote import Backpressure, register

_INBOUND = 40  # the receiver's backlog bound, in messages
_IN_FLIGHT = 32  # the sender's flow gate, in messages
_CHUNK = 16 * 1024  # payload bytes: one read of the I/O thread brings at most 16 of them


@register
class Chunk(msgspec.Struct, frozen=True):
    number: int
    data: bytes


class Slow(pykka.ThreadingActor):
    """Takes a millisecond per chunk and keeps their numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Chunk):
            time.sleep(0.001)  # the slow work under test, not a wait for a condition
            self.seen.append(message.number)
        elif message == "seen":
            return list(self.seen)
        return None


class Peaks:
    """The largest values seen, sampled every millisecond from a thread of its own."""

    def __init__(self, backlog: Backlog, inbox: Any, gate: Any) -> None:
        self.held = self.held_bytes = self.inbox = self.in_flight = 0
        self._sources = backlog, inbox, gate
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backlog, inbox, gate = self._sources
        while not self._done.wait(0.001):
            held, held_bytes = backlog.held
            self.held = max(self.held, held)
            self.held_bytes = max(self.held_bytes, held_bytes)
            self.inbox = max(self.inbox, inbox.qsize())
            self.in_flight = max(self.in_flight, gate.in_flight[0])

    def stop(self) -> None:
        self._done.set()
        self._thread.join(STEP_TIMEOUT)


@pytest.mark.timeout(90)
def test_a_fast_sender_to_a_slow_actor_waits_and_the_receiver_holds_a_bounded_backlog() -> None:
    count = 1500  # 24 MB: more than the kernel's socket buffers hold between the two members
    with ClusterHarness(
        causal_wait=30.0, max_inbound_messages=_INBOUND, max_messages_in_flight=_IN_FLIGHT
    ) as harness:
        a, b = harness.start_many(2)
        harness.wait_all_up()
        slow = Slow.start()
        b.node.register("slow", slow)
        backlog = b.node._loop.backlog
        peaks = Peaks(backlog, slow.actor_inbox, a.node.gate)
        target = a.node.remote("slow", member=b.uuid)
        try:
            for number in range(count):
                target.tell(Chunk(number, bytes(_CHUNK)))  # waits at the gate when it is full
            assert target.ask("seen", timeout=60) == list(range(count))  # none lost, in order
        finally:
            peaks.stop()
        per_read = 256 * 1024 // _CHUNK + 1  # what one read may bring before the link pauses
        assert peaks.held <= 2 * _INBOUND + per_read, peaks.held
        assert peaks.held_bytes <= (2 * _INBOUND + per_read) * (_CHUNK + 64)
        assert peaks.inbox <= 2 * (2 * _INBOUND + per_read), peaks.inbox
        assert peaks.in_flight == _IN_FLIGHT  # the sender waited at its flow gate
        assert backlog.pauses > 0
        assert backlog.held == (0, 0)  # every envelope read was handed on
        assert not backlog.over()
        for watcher, other in ((a, b), (b, a)):
            assert not unreachable(watcher, other), f"{watcher.address} saw {other.address} fail"


def unreachable(watcher: WatchedNode, other: WatchedNode) -> bool:
    return any(
        isinstance(event, MemberUnreachable) and event.member.uuid == other.uuid
        for event in watcher.events()
    )


class Stalling(Slow):
    """Stops for ``stall`` seconds at chunk 100 (longer than the failure detector tolerates)."""

    def __init__(self, stall: float) -> None:
        super().__init__()
        self.stall = stall

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Chunk) and message.number == 100:
            time.sleep(self.stall)  # the stall under test, not a wait for a condition
        return super().on_receive(message)


@pytest.mark.timeout(90)
def test_a_stalled_actor_keeps_its_member_reachable_at_a_read_per_pause_limit() -> None:
    bound = 40
    with ClusterHarness(
        causal_wait=30.0, max_inbound_messages=bound, max_messages_in_flight=_IN_FLIGHT
    ) as harness:
        a, b = harness.start_many(2)  # no third member to vouch for either
        harness.wait_all_up()
        stall = 2.5 * harness.settings.acceptable_heartbeat_pause
        stalling = Stalling.start(stall)
        b.node.register("stalling", stalling)
        backlog = b.node._loop.backlog
        peaks = Peaks(backlog, stalling.actor_inbox, a.node.gate)
        target = a.node.remote("stalling", member=b.uuid)
        try:
            for number in range(600):
                target.tell(Chunk(number, bytes(_CHUNK)))
            assert target.ask("seen", timeout=60) == list(range(600))
        finally:
            peaks.stop()
        per_read = 256 * 1024 // _CHUNK + 1
        reads = stall / harness.settings.read_pause_limit + 2  # one per limit while it stalls
        assert peaks.inbox + peaks.held <= 2 * bound + reads * per_read, vars(peaks)
        for watcher, other in ((a, b), (b, a)):
            assert not unreachable(watcher, other), f"{watcher.address} saw {other.address} fail"


class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class Inbox(pykka.ThreadingActor):
    """Keeps what it is told and sets ``arrived``; ``"got"`` returns it."""

    def __init__(self, arrived: threading.Event) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.arrived = arrived

    def on_receive(self, message: Any) -> Any:
        if message == "got":
            return list(self.got)
        self.got.append(message)
        self.arrived.set()
        return None


def test_publishes_and_answers_take_their_places_in_the_flow_gate() -> None:
    with ClusterHarness(max_messages_in_flight=4, block_on_backpressure=False) as harness:
        a, b = harness.start_many(2)
        harness.wait_all_up()
        b.node.register("echo", Echo.start())
        arrived = threading.Event()
        inbox = Inbox.start(arrived)
        b.node.subscribe("news", inbox)
        echo = a.node.remote("echo", member=b.uuid)
        assert echo.ask(Chunk(1, b"x")) == Chunk(1, b"x")
        for gate in (a.node.gate, b.node.gate):
            # Fill the gate: all 4 places at once, so this waits (on the gate's own condition)
            # until the answer's place has come back once b has written it.
            gate.acquire(0, block=True, count=4)
        with pytest.raises(Backpressure):
            a.node.publish("news", Chunk(2, b"lost"))
        with pytest.raises(Backpressure):  # b has no room to send the answer back
            echo.ask(Chunk(3, b"y"))
        for gate in (a.node.gate, b.node.gate):
            for _ in range(4):
                gate.release(0)
        a.node.publish("news", Chunk(4, b"news"))
        assert echo.ask(Chunk(5, b"z")) == Chunk(5, b"z")
        assert arrived.wait(STEP_TIMEOUT)
        assert inbox.ask("got") == [Chunk(4, b"news")]  # the refused publish never came
        # b gives the answer's place back once its I/O thread has written it, which may come
        # a moment after a has read it
        poll_until(
            lambda: a.node.gate.in_flight == b.node.gate.in_flight == (0, 0),
            "every place of both gates back",
        )
