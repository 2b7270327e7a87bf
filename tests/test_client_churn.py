"""Clients that come and go leave nothing behind in the member they used (tables, not RSS)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pykka
import pytest
from cluster_helpers import ClusterHarness, all_up, poll_until

from actors.node import Node
from actors.transport.timers import Timer, TimerQueue
from messages.messaging.delivery import DeliveryQueue, Release
from messages.messaging.versions import EMPTY_DIGEST
from messages.wire.remote import register

NONE = EMPTY_DIGEST  # the empty membership version: always reached


@register
class Hail(msgspec.Struct, frozen=True):
    number: int


class Greeter(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


def sizes(node: Node) -> dict[str, int]:
    """The length of every container held by the member's I/O loop and its actors."""
    loop = node._loop
    found = {
        "links": len(loop._links),
        "timers": len(loop._timers),
        "paused": len(loop._paused),
        "handshakes": len(loop._acceptor._handshakes_by_source),
    }
    for name in ("transport", "ordering", "router", "membership", "listeners"):
        actor = getattr(node, name)._actor_weakref()
        for field, value in vars(actor).items():
            if isinstance(value, dict | set | list | tuple):
                found[f"{name}.{field}"] = len(value)
            for inner, held in vars(value).items() if hasattr(value, "__dict__") else ():
                if isinstance(held, dict | set | list | tuple):
                    found[f"{name}.{field}.{inner}"] = len(held)
    return found


@pytest.mark.timeout(120)
def test_client_connect_and_stop_cycles_leave_no_state_behind() -> None:
    with ClusterHarness() as harness:
        member = harness.start()
        harness.wait_all_up()
        node = member.node
        assert isinstance(node, Node)
        node.register("greeter", Greeter.start())

        def cycle() -> None:
            client = harness.start_client([member.address])
            try:
                client.wait(all_up({member.uuid}), what="the member up at the client")
                greeter = client.owner.remote("greeter", member=member.uuid)
                assert greeter.ask(Hail(1)) == Hail(1)
                greeter.tell(Hail(2))
            finally:
                client.owner.stop()
                harness.clients.remove(client)

        for _ in range(3):
            cycle()
        poll_until(lambda: not node._loop._links, "the clients' links closed")  # no event says so
        before = sizes(node)
        for _ in range(30):
            cycle()
        poll_until(lambda: not node._loop._links, "the clients' links closed")
        timers_before = before.pop("timers")

        def grown() -> dict[str, tuple[int | None, int]]:
            after = sizes(node)
            timers = after.pop("timers")  # cancelled ones wait for compaction
            found = {k: (before.get(k), v) for k, v in after.items() if v > before.get(k, 0)}
            if timers > max(64, 2 * timers_before):
                found["timers"] = (timers_before, timers)
            return found

        # The actors drop a client's state when they handle its end, on the member's I/O thread,
        # which may come after the link has closed: wait for that, then say what is left.
        with contextlib.suppress(AssertionError):
            poll_until(lambda: not grown(), "the clients' state dropped")
        assert not grown()  # e.g. the ordering actor's numbering of each client, both ways


def test_a_forgotten_client_s_stream_and_a_members_new_numbering_are_taken_up() -> None:
    member_side: DeliveryQueue[str] = DeliveryQueue(5.0)
    assert member_side.offer("client", 7, NONE, "c7", 0.0, start_anywhere=True) == [
        Release("c7", None)
    ]
    client_side: DeliveryQueue[str] = DeliveryQueue(5.0)
    client_side.offer("member", 1, NONE, "m1", 0.0, renumbers=True)
    client_side.offer("member", 3, NONE, "m3", 0.0, renumbers=True)  # 2 was lost
    assert client_side.offer("member", 1, NONE, "new m1", 0.0, renumbers=True) == [
        Release("m3", "its sender is gone"),
        Release("new m1", None),
    ]
    assert client_side.held == 0


def test_cancelled_timers_do_not_pile_up_in_the_heap() -> None:
    queue = TimerQueue()
    live = [queue.add(1e9, Timer(lambda: True, None)) for _ in range(10)]
    for _ in range(1000):
        queue.call_once(1e9, lambda: None).cancel()
    assert len(queue) <= max(64, 2 * (len(live) + 1))
    assert queue.next_deadline() == 1e9
