"""Dispatcher: runs the mailboxes of many pykka actors on one thread, a few messages at a time.

Akka's default dispatcher, behind pykka's own extension points (``actors.dispatch.actor``): an
actor with mail is queued here once; the thread takes the next one and lets it handle up to
``throughput`` messages, then queues it again at the back if more mail waits. So one flooding actor
never starves another, and a tell between two actors on this thread only appends to a deque for
the thread that is already running (no wake-up, no switch of the GIL).

Which thread: one of its own, which sleeps in a blocking ``SimpleQueue.get`` while no actor has
mail (an idle dispatcher costs no CPU); or a host loop's (``DispatcherHost``: a node's I/O thread,
``actors.transport.loop``), which calls ``run`` between its socket passes with a time budget and
is woken through its own wake-up when another thread queues an actor.

Nothing on this thread may block: a handler that waits holds up every actor here (and a host's
sockets), and a blocking ``get()`` on a future that only this thread can complete would wait
forever; such a ``get()`` raises ``DispatcherDeadlockError`` at once instead
(``actors.dispatch.actor.DispatchedFuture``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Protocol

__all__ = [
    "DEFAULT_THROUGHPUT",
    "Dispatcher",
    "DispatcherDeadlockError",
    "DispatcherHost",
    "Mailbox",
]

logger = logging.getLogger(__name__)

DEFAULT_THROUGHPUT = 5
"""Messages one actor handles before the next actor's turn (Akka's default, 5)."""

_hosting = threading.local()


class DispatcherDeadlockError(RuntimeError):
    """A blocking wait on a dispatcher's thread for something only that thread can do (a future
    of an actor it runs): it would never end. Tell with a reply ref, or ask with ``block=False``
    and hand the future on, instead."""


class Mailbox(Protocol):
    """What the dispatcher runs: a dispatched actor's turn, and its stop when the thread ends."""

    def run_turn(self, throughput: int) -> None:
        """Handle up to ``throughput`` messages; queue itself again if more wait."""

    def stop_now(self) -> None:
        """Stop as ``ActorRef.stop`` would, dropping the mail left (its asks fail)."""


class DispatcherHost(Protocol):
    """A loop that runs a dispatcher on its thread: ``Dispatcher.run`` whenever it has mail (see
    ``Dispatcher.has_mail``), inside ``Dispatcher.hosting``, and ``Dispatcher.close`` at its end."""

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread (started or not yet)."""

    def wake(self) -> None:
        """From any thread: make the loop call ``run`` soon (never blocks; may coalesce)."""

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop; waits up to ``timeout`` for its thread, unless called on it."""


class Dispatcher:
    """Runs the mailboxes of the actors bound to it (see the module docstring), on a thread of its
    own, or on ``host``'s.

    Actors started inside ``with dispatcher.hosting():``, or by an actor running here, are bound to
    it (``actors.dispatch.actor.DispatchedActor``). ``stop()`` stops every actor still bound (each
    one's ``on_stop`` runs; asks still waiting in its mailbox fail with ``ActorDeadError``), then
    ends the thread (a host's: its loop).
    """

    def __init__(
        self,
        name: str = "dispatcher",
        throughput: int = DEFAULT_THROUGHPUT,
        *,
        shared: bool = True,
        host: DispatcherHost | None = None,
    ) -> None:
        if throughput < 1:
            raise ValueError(f"throughput must be at least 1, not {throughput}")
        self.throughput = throughput
        self.shared = shared or host is not None
        self._host = host
        self._ready: collections.deque[Mailbox] = collections.deque()
        self._bound: set[Mailbox] = set()
        self._lock = threading.Lock()
        self._stopping = False
        if host is not None:
            self._thread = host.thread
            self._wake = host.wake
            return
        self._bell: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._rung = False  # a ring not yet heard: later ones are not needed
        self._wake = self._ring
        self._thread = threading.Thread(target=self._run_alone, name=name, daemon=True)
        self._thread.start()

    @staticmethod
    def current() -> Dispatcher | None:
        """The shared dispatcher that actors started in this thread are bound to, if any."""
        dispatcher: Dispatcher | None = getattr(_hosting, "dispatcher", None)
        return dispatcher

    @contextlib.contextmanager
    def hosting(self) -> Iterator[Dispatcher]:
        """Bind the dispatched actors started in this block (in this thread) to this dispatcher."""
        previous = getattr(_hosting, "dispatcher", None)
        _hosting.dispatcher = self
        try:
            yield self
        finally:
            _hosting.dispatcher = previous

    def on_thread(self) -> bool:
        """True when called on the thread that runs this dispatcher."""
        return threading.get_ident() == self._thread.ident

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    def bind(self, mailbox: Mailbox) -> bool:
        """Take ``mailbox`` in; False when the dispatcher is stopping (it then never runs)."""
        with self._lock:
            if self._stopping:
                return False
            self._bound.add(mailbox)
            return True

    def unbind(self, mailbox: Mailbox) -> None:
        """``mailbox``'s actor has stopped."""
        with self._lock:
            self._bound.discard(mailbox)

    def execute(self, mailbox: Mailbox) -> None:
        """Give ``mailbox`` a turn (each mailbox is queued at most once at a time: its inbox's
        job). From the dispatcher's thread, only queued: that thread runs it in this pass."""
        self._ready.append(mailbox)
        if threading.get_ident() != self._thread.ident:
            self._wake()

    @property
    def has_mail(self) -> bool:
        """Whether some actor waits for its turn."""
        return bool(self._ready)

    def run(self, deadline: float | None = None) -> None:
        """On the dispatcher's thread: give the queued actors their turns, in order, those queued
        meanwhile too, until none waits, or ``deadline`` (``time.monotonic()``, looked at after
        each turn) has passed."""
        ready = self._ready
        while ready:
            mailbox = ready.popleft()
            try:
                mailbox.run_turn(self.throughput)
            except Exception:  # a bug in a mailbox must not end the thread of all the others
                logger.exception("A mailbox failed on %s", self._thread.name)
            if deadline is not None and time.monotonic() >= deadline:
                return

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the actors still bound, then the thread (a host's: its loop); waits up to
        ``timeout`` for it, unless called on the thread itself. Idempotent."""
        with self._lock:
            self._stopping = True
        if self._host is not None:
            self._host.stop(timeout)
            return
        self._ring()
        if not self.on_thread():
            self._thread.join(timeout)

    def close(self) -> None:
        """On the dispatcher's thread as it ends: take no more actors, and stop those bound."""
        with self._lock:
            self._stopping = True
            left = list(self._bound)
            self._bound.clear()
        self._ready.clear()
        for mailbox in left:
            try:
                mailbox.stop_now()
            except Exception:
                logger.exception("Stopping an actor failed on %s", self._thread.name)

    def _ring(self) -> None:
        if not self._rung:
            self._rung = True
            self._bell.put(None)

    def _run_alone(self) -> None:
        """The dispatcher's own thread: sleeps until an actor is queued, runs them all."""
        if self.shared:
            _hosting.dispatcher = self  # an actor started here is bound here
        while not self._stopping:
            self._bell.get()
            self._rung = False
            self.run()
        self.close()
