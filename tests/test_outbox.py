"""The outbox between the callers' threads and the router: one wake-up per batch, order kept."""

from __future__ import annotations

import collections
from typing import Any

import pykka
import pytest

from actors.messaging.outbox import Outbox
from messages.local.routing import Admitted, RemoteTell


def admitted(number: int) -> Admitted:
    return Admitted(RemoteTell("worker", number), "", bytes([number]))


class Router:
    """Stands in for the router: what it was told, in order."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def wake(self) -> None:
        self.told.append("DRAIN")

    def send(self, message: Admitted) -> None:
        self.told.append(message.message.message)


def numbers(batch: list[Admitted]) -> list[Any]:
    return [a.message.message for a in batch]


def test_a_lone_message_goes_straight_to_an_idle_router_and_the_rest_wait_for_it() -> None:
    outbox, router = Outbox(), Router()
    for number in range(3):
        outbox.put(admitted(number), router.wake, router.send)
    assert router.told == [0]  # the first woke it; the others wait for its next take
    assert numbers(outbox.take(10, router.wake)) == [1, 2]
    assert router.told == [0]
    assert numbers(outbox.take(10, router.wake)) == []  # empty: asleep again
    outbox.put(admitted(3), router.wake, router.send)
    assert router.told == [0, 3]


def test_a_batch_is_bounded_and_what_is_left_wakes_the_router_again() -> None:
    outbox, router = Outbox(), Router()
    for number in range(6):
        outbox.put(admitted(number), router.wake, router.send)
    assert numbers(outbox.take(3, router.wake)) == [1, 2, 3]
    assert router.told == [0, "DRAIN"]
    outbox.put(admitted(6), router.wake, router.send)  # a wake-up is pending already
    assert numbers(outbox.take(3, router.wake)) == [4, 5, 6]
    assert router.told == [0, "DRAIN"]


def test_a_closed_outbox_refuses_and_gives_back_what_was_left() -> None:
    outbox, router = Outbox(), Router()
    outbox.put(admitted(1), router.wake, router.send)
    outbox.put(admitted(2), router.wake, router.send)
    assert numbers(outbox.close()) == [2]
    with pytest.raises(RuntimeError, match="this node has stopped"):
        outbox.put(admitted(3), router.wake, router.send)


def test_a_put_whose_append_comes_after_the_close_is_refused_not_lost() -> None:
    """A put that found the outbox open, and appends only after the router's ``close`` took
    what was left, raises: its caller learns it was not sent (it was silently kept before)."""
    outbox, router = Outbox(), Router()
    outbox.put(admitted(1), router.wake, router.send)  # the router is awake: puts just append
    closed: list[list[Admitted]] = []

    class ClosingOnAppend(collections.deque[Admitted]):
        def append(self, item: Admitted) -> None:
            closed.append(outbox.close())  # the close comes between the put's look and append
            super().append(item)

    outbox._queued = ClosingOnAppend()
    with pytest.raises(RuntimeError, match="this node has stopped"):
        outbox.put(admitted(2), router.wake, router.send)
    assert closed == [[]]
    assert router.told == [1]


def test_a_router_that_cannot_be_told_takes_nothing_and_the_next_put_tries_again() -> None:
    outbox, router = Outbox(), Router()

    def dead(*_: Any) -> None:
        raise pykka.ActorDeadError("the router has stopped")

    with pytest.raises(pykka.ActorDeadError):
        outbox.put(admitted(1), dead, dead)
    assert numbers(outbox.take(10, router.wake)) == []
    outbox.put(admitted(2), router.wake, router.send)
    assert router.told == [2]
