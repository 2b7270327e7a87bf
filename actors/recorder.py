"""EventRecorder: a listener actor that keeps the events it gets and answers waits on them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from actors.futures import fail, settle
from messages.commands import GetEvents, InitialState, Subscribe, WaitUntil
from messages.events import ClusterEvent

__all__ = [
    "EventPredicate",
    "EventRecorder",
    "record_events",
    "wait_until",
]

logger = logging.getLogger(__name__)

EventPredicate = Callable[[tuple[ClusterEvent, ...]], bool]


class EventRecorder(pykka.ThreadingActor):
    """Records membership events; ``on_event`` (optional) is called with each one as it arrives.

    Used by the CLI (to print events) and by tests and demos (to wait for a condition on the event
    history instead of sleeping). It runs on a daemon thread: a recorder nobody stopped never keeps
    the process alive.
    """

    use_daemon_thread = True

    def __init__(self, on_event: Callable[[ClusterEvent], None] | None = None) -> None:
        super().__init__()
        self._events: list[ClusterEvent] = []
        self._on_event = on_event
        self._waiters: list[WaitUntil] = []

    def on_receive(self, message: Any) -> Any:
        match message:
            case ClusterEvent():
                self._events.append(message)
                self._call_on_event(message)
                self._check_waiters()
            case GetEvents():
                return tuple(self._events)
            case WaitUntil():
                self._waiters.append(message)
                self._check_waiters()
            case _:
                logger.warning("EventRecorder ignores unexpected message %r", message)
        return None

    def _call_on_event(self, event: ClusterEvent) -> None:
        """Call ``on_event``, if any; one that raises is logged, and the recorder keeps recording."""
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("EventRecorder's on_event raised on %s", event)

    def _check_waiters(self) -> None:
        """Settle each waiter whose predicate holds; one whose predicate raises gets that error
        (the recorder must not stop for a caller's function)."""
        if not self._waiters:
            return
        events = tuple(self._events)
        still_waiting = []
        for waiter in self._waiters:
            try:
                holds = waiter.predicate(events)
            except Exception as error:
                logger.warning("WaitUntil predicate %r raised %r", waiter.predicate, error)
                fail(waiter.done, error)
                continue
            if holds:
                settle(waiter.done, events)
            else:
                still_waiting.append(waiter)
        self._waiters = still_waiting


def record_events(
    listeners: pykka.ActorRef[Any],
    on_event: Callable[[ClusterEvent], None] | None = None,
    initial_state: InitialState = InitialState.EVENTS,
) -> pykka.ActorRef[Any]:
    """Start an EventRecorder subscribed to every event type of the registry ``listeners``."""
    recorder = EventRecorder.start(on_event)
    listeners.ask(
        Subscribe(subscriber=recorder, events=(ClusterEvent,), initial_state=initial_state)
    )
    return recorder


def wait_until(
    recorder: pykka.ActorRef[Any], predicate: EventPredicate, timeout: float
) -> tuple[ClusterEvent, ...]:
    """Block until ``predicate`` holds on the recorder's events; raises pykka.Timeout after ``timeout``."""
    done: pykka.Future[tuple[ClusterEvent, ...]] = pykka.ThreadingFuture()
    recorder.tell(WaitUntil(predicate=predicate, done=done))
    return done.get(timeout=timeout)
