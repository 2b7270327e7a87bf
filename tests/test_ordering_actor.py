"""OrderingActor: a real actor delivering shuffled envelopes to a collector in causal order."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import pykka
import pytest

from actors.ordering import OrderingActor
from messages.causal import GetClock, HoldBackOverflow, Offer, Stamp, stamp
from messages.envelope import Envelope
from messages.vector_clock import VectorClock

TIMEOUT = 5.0


class Collector(pykka.ThreadingActor):
    """Records what it is told; sets ``done`` once it holds ``expected`` messages."""

    def __init__(self, expected: int, done: threading.Event) -> None:
        super().__init__()
        self._expected = expected
        self._received: list[Any] = []
        self._done = done

    def on_receive(self, message: Any) -> Any:
        if message == "received":
            return tuple(self._received)
        self._received.append(message)
        if len(self._received) >= self._expected:
            self._done.set()
        return None


Start = Callable[..., pykka.ActorRef[Any]]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start actors for one test and stop exactly those afterwards."""
    started: list[pykka.ActorRef[Any]] = []

    def start_actor(actor_class: type[pykka.ThreadingActor], *args: Any) -> pykka.ActorRef[Any]:
        ref = actor_class.start(*args)
        started.append(ref)
        return ref

    yield start_actor
    for ref in reversed(started):
        ref.stop(block=True, timeout=TIMEOUT)


class Harness:
    """An OrderingActor for node "me" delivering to a Collector that expects ``expected`` messages."""

    def __init__(self, start: Start, expected: int, max_held: int = 10_000) -> None:
        self._done = threading.Event()
        self._collector = start(Collector, expected, self._done)
        self.orderer = start(OrderingActor, "me", self._collector, max_held)

    def received(self) -> tuple[Any, ...]:
        """Everything delivered, once the collector has all it expects."""
        assert self._done.wait(TIMEOUT), "collector did not get all messages in time"
        return cast(tuple[Any, ...], self._collector.ask("received", timeout=TIMEOUT))


def causal_history(rng: random.Random, senders: str, sends: int) -> list[Envelope]:
    """``sends`` envelopes of ``senders``, each sent after delivering some earlier envelopes."""
    clocks = {sender: VectorClock() for sender in senders}
    history: list[Envelope] = []
    while len(history) < sends:
        actor = rng.choice(senders)
        if history and rng.random() < 0.4:
            clocks[actor] = clocks[actor].merge(rng.choice(history).clock)
        else:
            clocks[actor], message = stamp(clocks[actor], actor, len(history))
            history.append(message)
    return history


def envelope(sender: str, **timestamps: int) -> Envelope:
    return Envelope(sender=sender, clock=VectorClock(dict(timestamps)), body=timestamps)


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_tells_are_delivered_in_causal_order(start: Start, seed: int) -> None:
    rng = random.Random(seed)
    history = causal_history(rng, "abc", sends=60)
    arrivals = rng.sample(history, len(history))
    harness = Harness(start, len(history))
    orderer = harness.orderer

    for arrival in arrivals:
        orderer.tell(arrival)
    delivered = harness.received()

    assert sorted(message.body for message in delivered) == list(range(len(history)))
    position = {message.body: index for index, message in enumerate(delivered)}
    for message in history:
        for other in history:
            if other is not message and other.clock.get(other.sender) <= message.clock.get(
                other.sender
            ):
                assert position[other.body] < position[message.body]
    final_clock = VectorClock()
    for message in history:
        final_clock = final_clock.merge(message.clock)
    assert orderer.ask(GetClock(), timeout=TIMEOUT) == final_clock


def test_overflow_via_offer_ask_raises_and_the_actor_keeps_working(start: Start) -> None:
    harness = Harness(start, expected=4, max_held=2)
    orderer = harness.orderer
    a1, a2, a3, a4, a5 = (envelope("a", a=sequence) for sequence in range(1, 6))
    orderer.tell(a3)
    orderer.tell(a4)

    with pytest.raises(HoldBackOverflow, match=r"#5 from 'a', which waits for 'a' #1\.\.#4"):
        orderer.ask(Offer(a5), timeout=TIMEOUT)

    assert orderer.ask(GetClock(), timeout=TIMEOUT) == VectorClock()
    orderer.tell(a1)
    orderer.tell(a2)
    assert harness.received() == (a1, a2, a3, a4)


def test_overflow_via_tell_is_logged_and_the_actor_keeps_working(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    harness = Harness(start, expected=2, max_held=1)
    orderer = harness.orderer
    a1, a2, a3 = (envelope("a", a=sequence) for sequence in range(1, 4))
    with caplog.at_level(logging.ERROR, logger="actors.ordering"):
        orderer.tell(a2)
        orderer.tell(a3)
        assert orderer.ask(GetClock(), timeout=TIMEOUT) == VectorClock()
    assert any("waits for 'a' #1..#2" in record.getMessage() for record in caplog.records)

    assert orderer.is_alive()
    orderer.tell(a1)
    assert harness.received() == (a1, a2)


def test_malformed_envelope_via_tell_does_not_stop_the_actor(start: Start) -> None:
    orderer = Harness(start, expected=0).orderer
    orderer.tell(envelope("a", b=1))
    with pytest.raises(ValueError, match="clock entry 0 for its own sender"):
        orderer.ask(Offer(envelope("a", b=1)), timeout=TIMEOUT)
    assert orderer.ask(GetClock(), timeout=TIMEOUT) == VectorClock()


def test_stamp_increments_the_node_clock_and_replies_the_envelope(start: Start) -> None:
    harness = Harness(start, expected=2)
    orderer = harness.orderer
    from_peer = envelope("peer", peer=1)
    orderer.tell(from_peer)

    first = orderer.ask(Stamp("hello"), timeout=TIMEOUT)
    second = cast(Envelope, orderer.ask(Stamp("again"), timeout=TIMEOUT))

    assert first == Envelope(sender="me", clock=VectorClock({"peer": 1, "me": 1}), body="hello")
    assert second.clock == VectorClock({"peer": 1, "me": 2})
    assert orderer.ask(GetClock(), timeout=TIMEOUT) == VectorClock({"peer": 1, "me": 2})
    reply = envelope("peer", me=2, peer=2)
    orderer.tell(reply)
    assert harness.received() == (from_peer, reply)
