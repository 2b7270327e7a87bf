"""Stopping loaded members: no actor tells a stopped one, so nothing logs an error.

A node stops its actors senders first (``actors.node.stop_wired``); it used to stop the ordering
actor before the membership actor, which then failed telling it (``ActorDeadError``, logged by
pykka as an unhandled exception).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, WatchedNode

from messages.wire.remote import RemoteError, register


@register
class Load(msgspec.Struct, frozen=True):
    number: int


class Counter(pykka.ThreadingActor):
    """Answers each ``Load`` with its number; sets ``busy`` once it has had ``enough``."""

    def __init__(self, busy: threading.Event, enough: int) -> None:
        super().__init__()
        self.busy = busy
        self.enough = enough
        self.seen = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Load):
            self.seen += 1
            if self.seen >= self.enough:
                self.busy.set()
            return message.number
        return None


def send_until_stopped(node: WatchedNode) -> None:
    """Tell and ask the counters of the members the load balancer picks until ``node`` stops."""
    anyone = node.node.remote("counter")
    number = 0
    while node.is_running:
        number += 1
        try:
            anyone.tell(Load(number))
            if number % 10 == 0:
                anyone.ask(Load(number), timeout=1.0, block=False)
        except RuntimeError:  # the node has stopped
            return
        except RemoteError:  # backpressure, while the members go
            continue


@pytest.mark.timeout(120)
def test_members_stopped_under_load_log_no_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    # Nobody is downed meanwhile: a member left alone would rightly log that it is in a minority.
    with ClusterHarness(acceptable_heartbeat_pause=60.0, down_after=60.0) as harness:
        nodes = harness.start_many(3)
        harness.wait_all_up()
        busy = [threading.Event() for _ in nodes]
        for node, event in zip(nodes, busy, strict=True):
            node.node.register("counter", Counter.start(event, enough=20))
        senders = [
            threading.Thread(target=send_until_stopped, args=(node,), name=f"load-{i}")
            for i, node in enumerate(nodes)
        ]
        for sender in senders:
            sender.start()
        for event in busy:
            assert event.wait(STEP_TIMEOUT), "the load never reached every member"
        for node in nodes:  # each stops while the others (and itself) still send to it
            node.node.stop()
        for sender in senders:
            sender.join(STEP_TIMEOUT)
            assert not sender.is_alive(), f"{sender.name} did not end"
    errors = [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.split(".")[0] in ("actors", "pykka")
    ]
    assert not errors, "\n".join(f"{r.name}: {r.getMessage()}" for r in errors)
