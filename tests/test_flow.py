"""The flow gate: both bounds, waiting for room or refusing at once, and payloads too large."""

from __future__ import annotations

import threading

import pytest

from actors.messaging.flow import FlowGate
from messages.wire.remote import Backpressure, MessageTooLarge


def test_a_full_gate_refuses_at_once_without_blocking() -> None:
    gate = FlowGate(max_messages=2, max_bytes=100, block=False, timeout=10.0)
    gate.acquire(10)
    gate.acquire(10)
    with pytest.raises(Backpressure, match=r"2 messages \(20 bytes\) are still waiting"):
        gate.acquire(10)
    gate.release(10)
    gate.acquire(10)
    assert gate.in_flight == (2, 20)


def test_the_byte_bound_counts_payload_sizes() -> None:
    gate = FlowGate(max_messages=100, max_bytes=100, block=False, timeout=10.0)
    gate.acquire(60)
    with pytest.raises(Backpressure):
        gate.acquire(41)
    gate.acquire(40)
    assert gate.in_flight == (2, 100)


def test_a_payload_larger_than_the_gate_is_refused_for_good() -> None:
    gate = FlowGate(max_messages=100, max_bytes=100, block=True, timeout=10.0)
    with pytest.raises(MessageTooLarge, match="101 bytes is larger than the 100 bytes"):
        gate.acquire(101)
    framed = FlowGate(
        max_messages=100, max_bytes=100, block=True, timeout=10.0, max_message_bytes=50
    )
    with pytest.raises(MessageTooLarge, match="51 bytes is larger than the 50 bytes"):
        framed.acquire(51)
    assert gate.in_flight == framed.in_flight == (0, 0)


def test_a_blocking_gate_waits_for_room_and_gives_up_after_its_timeout() -> None:
    gate = FlowGate(max_messages=1, max_bytes=100, block=True, timeout=0.05)
    gate.acquire(1)
    with pytest.raises(Backpressure, match=r"waited 0.05 s"):
        gate.acquire(1)
    waiting = FlowGate(max_messages=1, max_bytes=100, block=True, timeout=30.0)
    waiting.acquire(1)
    admitted = threading.Event()
    sender = threading.Thread(target=lambda: (waiting.acquire(1), admitted.set()))
    sender.start()
    assert not admitted.wait(0.05)  # no room yet
    waiting.release(1)
    sender.join(10)
    assert admitted.is_set()
    assert waiting.in_flight == (1, 1)


def test_a_publish_takes_a_place_per_member_all_or_none() -> None:
    gate = FlowGate(max_messages=5, max_bytes=100, block=False, timeout=10.0)
    gate.acquire(10, count=3)
    assert gate.in_flight == (3, 30)
    with pytest.raises(Backpressure):
        gate.acquire(10, count=3)  # two places are left: none is taken
    assert gate.in_flight == (3, 30)
    gate.acquire(10, count=2)
    assert gate.in_flight == (5, 50)
