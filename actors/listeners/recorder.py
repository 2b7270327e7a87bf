"""EventRecorder: a listener actor that keeps the events it gets and hands them on to watchers."""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.dispatch.actor import DispatchedActor
from messages.events import ClusterEvent
from messages.local.commands import GetEvents, InitialState, Subscribe, UnwatchEvents, WatchEvents

__all__ = [
    "EventPredicate",
    "EventRecorder",
    "record_events",
    "wait_until",
]

logger = logging.getLogger(__name__)

EventPredicate = Callable[[tuple[ClusterEvent, ...]], bool]


class EventRecorder(DispatchedActor):
    """Records membership events; ``on_event`` (optional) is called with each one as it arrives.

    Used by the CLI (to print events) and by tests and demos (to wait for a condition on the event
    history instead of sleeping: ``wait_until``). ``WatchEvents`` replies the events so far and has
    each later one told to the watcher, in the same order. It runs no caller's condition (that runs
    in the caller's thread). Started where a dispatcher hosts it (the CLI: the node's, as
    ``on_event`` only logs), it shares that thread; else it runs on a daemon thread of its own: a
    recorder nobody stopped never keeps the process alive.
    """

    def __init__(self, on_event: Callable[[ClusterEvent], None] | None = None) -> None:
        super().__init__()
        self._events: list[ClusterEvent] = []
        self._on_event = on_event
        self._watchers: list[pykka.ActorRef[Any]] = []

    def on_receive(self, message: Any) -> Any:
        match message:
            case ClusterEvent():
                self._events.append(message)
                self._call_on_event(message)
                self._tell_watchers(message)
            case GetEvents():
                return tuple(self._events)
            case WatchEvents(watcher=watcher):
                self._watchers.append(watcher)
                return tuple(self._events)
            case UnwatchEvents(watcher=watcher):
                self._watchers = [w for w in self._watchers if w.actor_urn != watcher.actor_urn]
            case _:
                logger.warning("EventRecorder ignores unexpected message %r", message)
        return None

    def _call_on_event(self, event: ClusterEvent) -> None:
        """Call ``on_event``, if any.

        One that raises is logged, and the recorder keeps recording.
        """
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("EventRecorder's on_event raised on %s", event)

    def _tell_watchers(self, event: ClusterEvent) -> None:
        """Tell each watcher the event; one that has stopped is dropped."""
        alive = []
        for watcher in self._watchers:
            try:
                watcher.tell(event)
            except pykka.ActorDeadError:
                continue
            alive.append(watcher)
        self._watchers = alive


class _EventQueue(pykka.ThreadingActor):
    """A watcher for one ``wait_until``: puts each event it is told into its caller's queue."""

    use_daemon_thread = True

    def __init__(self, events: queue.SimpleQueue[ClusterEvent]) -> None:
        super().__init__()
        self._queue = events

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ClusterEvent):
            self._queue.put(message)
        else:
            logger.warning("wait_until's watcher ignores unexpected message %r", message)
        return None


def record_events(
    listeners: pykka.ActorRef[Any],
    on_event: Callable[[ClusterEvent], None] | None = None,
    initial_state: InitialState = InitialState.EVENTS,
) -> pykka.ActorRef[Any]:
    """Start an EventRecorder subscribed to every event type of the registry ``listeners``
    (``pykka.ActorDeadError`` when the registry has stopped; the recorder is stopped then)."""
    recorder = EventRecorder.start(on_event)
    try:
        listeners.ask(
            Subscribe(subscriber=recorder, events=(ClusterEvent,), initial_state=initial_state)
        )
    except pykka.ActorDeadError:
        recorder.stop(block=False)
        raise
    return recorder


def wait_until(
    recorder: pykka.ActorRef[Any], predicate: EventPredicate, timeout: float
) -> tuple[ClusterEvent, ...]:
    """Block until ``predicate`` holds on the recorder's events and return them; raises
    pykka.Timeout after ``timeout`` seconds.

    ``predicate`` runs in the caller's thread (one that raises raises here), on the events so far
    and again after each new one, which a short-lived watcher actor receives from the recorder and
    queues for this thread to wait on.
    """
    deadline = time.monotonic() + timeout
    arrived: queue.SimpleQueue[ClusterEvent] = queue.SimpleQueue()
    watcher = _EventQueue.start(arrived)
    try:
        so_far: tuple[ClusterEvent, ...] = recorder.ask(
            WatchEvents(watcher), block=True, timeout=timeout
        )
        events = list(so_far)
        try:
            while not predicate(tuple(events)):
                try:
                    events.append(arrived.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    raise pykka.Timeout(
                        f"condition not reached within {timeout:g} s ({len(events)} events)"
                    ) from None
        finally:
            with contextlib.suppress(pykka.ActorDeadError):
                recorder.tell(UnwatchEvents(watcher))
    finally:
        watcher.stop()
    return tuple(events)
