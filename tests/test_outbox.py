"""The outbox between the callers' threads and the router: one wake-up per batch, order kept."""

from __future__ import annotations

import pykka
import pytest

from actors.messaging.outbox import Outbox
from messages.local.routing import Admitted, RemoteTell


def admitted(number: int) -> Admitted:
    return Admitted(RemoteTell("worker", number), "", bytes([number]))


def test_only_the_first_message_of_a_batch_wakes_the_router() -> None:
    outbox, wakes = Outbox(), []
    for number in range(3):
        outbox.put(admitted(number), lambda: wakes.append(1))
    assert len(wakes) == 1
    assert [a.message.message for a in outbox.take(10, lambda: wakes.append(1))] == [0, 1, 2]
    assert len(wakes) == 1
    outbox.put(admitted(3), lambda: wakes.append(1))
    assert len(wakes) == 2
    assert [a.message.message for a in outbox.take(10, lambda: wakes.append(1))] == [3]


def test_a_batch_is_bounded_and_what_is_left_wakes_the_router_again() -> None:
    outbox, wakes = Outbox(), []
    for number in range(5):
        outbox.put(admitted(number), lambda: wakes.append("put"))
    assert [a.message.message for a in outbox.take(3, lambda: wakes.append("take"))] == [0, 1, 2]
    assert wakes == ["put", "take"]
    outbox.put(admitted(5), lambda: wakes.append("put"))  # a wake-up is pending already
    assert [a.message.message for a in outbox.take(3, lambda: wakes.append("take"))] == [3, 4, 5]
    assert wakes == ["put", "take"]


def test_a_closed_outbox_refuses_and_gives_back_what_was_left() -> None:
    outbox = Outbox()
    outbox.put(admitted(1), lambda: None)
    assert [a.message.message for a in outbox.close()] == [1]
    with pytest.raises(RuntimeError, match="this node has stopped"):
        outbox.put(admitted(2), lambda: None)


def test_a_wake_up_that_fails_takes_its_message_back() -> None:
    outbox = Outbox()

    def dead() -> None:
        raise pykka.ActorDeadError("the router has stopped")

    with pytest.raises(pykka.ActorDeadError):
        outbox.put(admitted(1), dead)
    assert outbox.take(10, lambda: None) == []
    woken = []
    outbox.put(admitted(2), lambda: woken.append(True))  # the next put wakes again
    assert woken == [True]
