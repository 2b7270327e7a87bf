"""DispatchedActor and Dispatcher: pykka actors sharing one thread (actors.dispatch).

Every test runs on both kinds of dispatcher thread: one of its own, and a node's I/O thread
(``IoLoop``), which hosts the node's dispatcher."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pykka
import pytest

from actors.dispatch.actor import DispatchedActor, tell_now
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


class Shared(DispatchedActor):
    """Appends what it is told to a list the test holds (read without asking); told a
    callable, it calls it (in its turn) and appends what it returns."""

    def __init__(self, seen: list[Any], name: str = "") -> None:
        super().__init__()
        self.seen = seen
        self.name = name

    def on_receive(self, message: Any) -> Any:
        if callable(message):
            message = message()
        self.seen.append((self.name, message) if self.name else message)
        return None


def test_tell_now_handles_the_message_in_the_call_when_the_actor_is_idle(
    dispatcher: Dispatcher,
) -> None:
    """On the dispatcher's thread, an idle actor takes a ``tell_now`` at once, in the call (the
    I/O thread's read and the ordering actor hand envelopes on that way); a plain tell waits
    for its turn later in the pass."""
    seen: list[Any] = []
    with dispatcher.hosting():
        runner, target = Log.start(), Shared.start(seen)

    def tell_then_look() -> list[Any]:
        target.tell("told")
        return list(seen)

    assert runner.ask(("call", tell_then_look), timeout=TIMEOUT) == []
    wait_for(lambda: seen == ["told"])

    def tell_now_then_look() -> list[Any]:
        tell_now(target, "now")
        return list(seen)

    assert runner.ask(("call", tell_now_then_look), timeout=TIMEOUT) == ["told", "now"]


def test_tell_now_keeps_the_order_behind_mail_already_waiting(dispatcher: Dispatcher) -> None:
    """A fast-path message never overtakes a slow-path one: with mail waiting (or the actor in
    its turn), ``tell_now`` queues behind it; the next one, with the actor idle again, is
    handled at once; from another thread it is a plain tell."""
    seen: list[Any] = []
    with dispatcher.hosting():
        runner, target = Log.start(), Shared.start(seen)

    def interleave() -> list[Any]:
        target.tell(1)  # queued for a turn later in this pass
        tell_now(target, 2)  # must not overtake 1
        return list(seen)

    assert runner.ask(("call", interleave), timeout=TIMEOUT) == []
    wait_for(lambda: seen == [1, 2])

    def own_turn() -> int:
        tell_now(target, 4)  # the target is in its own turn (handling 3): queued behind it
        return 3

    target.tell(own_turn)
    wait_for(lambda: seen == [1, 2, 3, 4])
    tell_now(target, 5)  # not the dispatcher's thread: a plain tell
    wait_for(lambda: seen == [1, 2, 3, 4, 5])


def test_tell_now_between_two_actors_never_reenters_one(dispatcher: Dispatcher) -> None:
    """A handler run by ``tell_now`` that hands on with ``tell_now`` to the actor that called
    it: that one is in its turn, so the message waits for its next turn (no re-entry)."""
    seen: list[Any] = []
    with dispatcher.hosting():
        first, second = Shared.start(seen, "first"), Shared.start(seen, "second")
    for actor in (first, second):  # both past their first turn (on_start): idle
        actor.ask(lambda: "ready", timeout=TIMEOUT)
    seen.clear()

    def bounce() -> str:
        tell_now(first, "back")  # first is in its turn: queued
        return "bounced"

    def start() -> str:
        tell_now(second, bounce)  # second is idle: runs now, inside first's turn
        return "started"

    first.tell(start)
    wait_for(lambda: len(seen) == 3)
    assert seen == [("second", "bounced"), ("first", "started"), ("first", "back")]


def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (looked at every millisecond), at most ``TIMEOUT``."""
    deadline = time.monotonic() + TIMEOUT
    while not condition() and time.monotonic() < deadline:
        threading.Event().wait(0.001)
    assert condition()
