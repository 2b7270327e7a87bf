"""DispatchedActor and Dispatcher: pykka actors sharing one thread (actors.dispatch).

Every test runs on both kinds of dispatcher thread: one of its own, and a node's I/O thread
(``IoLoop``), which hosts the node's dispatcher."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, cast

import pykka
import pytest

from actors.dispatch.actor import DispatchedActor
from actors.dispatch.dispatcher import Dispatcher, DispatcherDeadlockError
from actors.transport.loop import IoLoop
from messages.settings import Settings
from messages.wire.codec import WIRE_CODEC

TIMEOUT = 10.0


@pytest.fixture(params=["own-thread", "io-thread"])
def dispatcher(request: pytest.FixtureRequest) -> Iterator[Dispatcher]:
    if request.param == "own-thread":
        shared = Dispatcher("test-dispatcher", throughput=3)
        yield shared
        shared.stop()
    else:
        loop = IoLoop(WIRE_CODEC, Settings(cluster_name="c"), name="test-dispatcher")
        yield loop.dispatcher
        loop.stop()


class Log(DispatchedActor):
    """Keeps what it is told; answers an ask with what it has so far. Told a callable, it calls
    it (a test runs code on the dispatcher thread that way)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.threads: set[str] = set()

    def on_start(self) -> None:
        self.threads.add(threading.current_thread().name)

    def on_receive(self, message: Any) -> Any:
        self.threads.add(threading.current_thread().name)
        match message:
            case "get":
                return list(self.seen)
            case "threads":
                return set(self.threads)
            case "boom":
                raise ValueError("boom")
            case ("call", function):
                return function()
            case _:
                self.seen.append(message)
        return None


def test_actors_started_in_hosting_share_the_dispatcher_thread(dispatcher: Dispatcher) -> None:
    with dispatcher.hosting():
        first, second = Log.start(), Log.start()
    outside = Log.start()  # no dispatcher hosting: a thread of its own
    try:
        assert first.ask("threads", timeout=TIMEOUT) == {"test-dispatcher"}
        assert second.ask("threads", timeout=TIMEOUT) == {"test-dispatcher"}
        assert outside.ask("threads", timeout=TIMEOUT) != {"test-dispatcher"}
        assert pykka.ActorRegistry.get_by_urn(first.actor_urn) is first
    finally:
        outside.stop()


def test_messages_to_one_actor_keep_their_order(dispatcher: Dispatcher) -> None:
    with dispatcher.hosting():
        log = Log.start()
    for n in range(500):
        log.tell(n)
    assert log.ask("get", timeout=TIMEOUT) == list(range(500))


def test_a_flooding_actor_does_not_starve_another(dispatcher: Dispatcher) -> None:
    """Each actor handles at most ``throughput`` messages per turn: the other one's message,
    told after a flood of 300, is handled long before the flood ends."""
    order: list[str] = []
    gate = threading.Event()
    with dispatcher.hosting():
        flood, other = Log.start(), Log.start()
    flood.tell(("call", lambda: gate.wait(TIMEOUT)))  # holds the thread while the mail piles up
    for _ in range(300):
        flood.tell(("call", lambda: order.append("flood")))
    done = other.ask(("call", lambda: order.append("other")), block=False)
    gate.set()
    done.get(timeout=TIMEOUT)
    assert flood.ask("get", timeout=TIMEOUT) == []
    assert order.index("other") <= dispatcher.throughput
    assert order.count("flood") == 300


def test_an_actor_that_raises_stops_alone_with_on_failure(dispatcher: Dispatcher) -> None:
    failed = threading.Event()

    class Fragile(Log):
        def on_failure(self, *_exc_info: Any) -> None:
            failed.set()

    with dispatcher.hosting():
        fragile, healthy = Fragile.start(), Log.start()
    with pytest.raises(ValueError, match="boom"):
        fragile.ask("boom", timeout=TIMEOUT)  # an ask gets the error; the actor lives on
    assert fragile.is_alive()
    fragile.tell("boom")  # a tell's error is a failure: on_failure, then the actor stops
    assert failed.wait(TIMEOUT)
    healthy.tell("still here")
    assert healthy.ask("get", timeout=TIMEOUT) == ["still here"]
    with pytest.raises(pykka.ActorDeadError):
        fragile.tell("more")


def test_a_blocking_get_on_the_dispatcher_thread_fails_at_once(dispatcher: Dispatcher) -> None:
    """Waiting on the dispatcher thread for an actor that only that thread runs would never end:
    it raises ``DispatcherDeadlockError`` instead, and the thread carries on."""
    with dispatcher.hosting():
        asker, target = Log.start(), Log.start()

    def ask_target() -> Any:
        return target.ask("get", timeout=TIMEOUT)

    with pytest.raises(DispatcherDeadlockError):
        asker.ask(("call", ask_target), timeout=TIMEOUT)
    # A future already set does not wait: getting it on the thread is fine.
    target.tell("x")
    assert asker.ask(("call", lambda: target.ask("get", block=False)), timeout=TIMEOUT).get(
        timeout=TIMEOUT
    ) == ["x"]
    with pytest.raises(DispatcherDeadlockError):  # a stop that waits is such an ask too
        asker.ask(("call", lambda: target.stop(block=True)), timeout=TIMEOUT)
    assert asker.ask("get", timeout=TIMEOUT) == []  # the thread carries on


def test_stop_while_busy_answers_what_waits_and_runs_on_stop(dispatcher: Dispatcher) -> None:
    stopped = threading.Event()
    gate = threading.Event()

    class Busy(Log):
        def on_stop(self) -> None:
            stopped.set()

    with dispatcher.hosting():
        busy = Busy.start()
    busy.tell(("call", lambda: gate.wait(TIMEOUT)))
    behind = busy.ask("get", block=False)  # waits behind the busy handler
    stop = busy.ask(pykka.messages._ActorStop(), block=False)  # what ref.stop() puts
    late = busy.ask("get", block=False)  # after the stop: never handled
    gate.set()
    assert behind.get(timeout=TIMEOUT) == []
    assert stop.get(timeout=TIMEOUT) is None
    assert stopped.is_set()
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=TIMEOUT)
    assert not busy.is_alive()
    busy.stop()  # stopping a stopped actor is a no-op, as with pykka's own


def test_stopping_the_dispatcher_stops_its_actors(dispatcher: Dispatcher) -> None:
    stopped: list[str] = []
    gate = threading.Event()

    class Tracked(Log):
        def on_stop(self) -> None:
            stopped.append(self.actor_urn)

    with dispatcher.hosting():
        first, second = Tracked.start(), Tracked.start()
    first.tell(("call", lambda: gate.wait(TIMEOUT)))
    waiting = second.ask("get", block=False)
    threading.Timer(0.05, gate.set).start()
    dispatcher.stop(TIMEOUT)
    assert not dispatcher.is_running
    assert not first.is_alive()
    assert not second.is_alive()
    assert sorted(stopped) == sorted([first.actor_urn, second.actor_urn])
    # Answered before the stop was reached, or failed by it: never left waiting.
    with contextlib.suppress(pykka.ActorDeadError):
        assert waiting.get(timeout=TIMEOUT) == []
    with dispatcher.hosting(), pytest.raises(pykka.ActorDeadError):
        Log.start()  # a stopped dispatcher takes no new actor


def test_an_actor_started_by_a_dispatched_actor_shares_its_thread(
    dispatcher: Dispatcher,
) -> None:
    with dispatcher.hosting():
        parent = Log.start()
    child = cast("pykka.ActorRef[Any]", parent.ask(("call", Log.start), timeout=TIMEOUT))
    assert child.ask("threads", timeout=TIMEOUT) == {"test-dispatcher"}


def test_proxies_work_on_a_dispatched_actor(dispatcher: Dispatcher) -> None:
    with dispatcher.hosting():
        log = Log.start()
    proxy = log.proxy()
    log.tell(1)
    assert proxy.seen.get(timeout=TIMEOUT) == [1]
    assert proxy.on_receive("get").get(timeout=TIMEOUT) == [1]
