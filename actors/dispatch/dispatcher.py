"""Dispatcher: one thread that runs the mailboxes of many pykka actors, a few messages at a time.

Akka's default dispatcher, behind pykka's own extension points (``actors.dispatch.actor``): an
actor with mail is queued here once; the thread takes the next one and lets it handle up to
``throughput`` messages, then queues it again at the back if more mail waits. So one flooding actor
never starves another, and a tell between two actors on this thread only queues work for the thread
that is already running (no wake-up, no switch of the GIL). The thread sleeps in a blocking
``SimpleQueue.get`` when no actor has mail: an idle dispatcher costs no CPU.

Nothing on this thread may block: a handler that waits holds up every actor here, and a blocking
``get()`` on a future that only this thread can complete would wait forever; such a ``get()`` raises
``DispatcherDeadlockError`` at once instead (``actors.dispatch.actor.DispatchedFuture``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Protocol

__all__ = ["DEFAULT_THROUGHPUT", "Dispatcher", "DispatcherDeadlockError", "Mailbox"]

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


class Dispatcher:
    """One thread running the mailboxes of the actors bound to it (see the module docstring).

    Actors started inside ``with dispatcher.hosting():``, or by an actor running here, are bound to
    it (``actors.dispatch.actor.DispatchedActor``). ``stop()`` stops every actor still bound (each
    one's ``on_stop`` runs; asks still waiting in its mailbox fail with ``ActorDeadError``), then
    ends the thread.
    """

    def __init__(
        self, name: str = "dispatcher", throughput: int = DEFAULT_THROUGHPUT, *, shared: bool = True
    ) -> None:
        if throughput < 1:
            raise ValueError(f"throughput must be at least 1, not {throughput}")
        self.throughput = throughput
        self.shared = shared
        self._ready: queue.SimpleQueue[Mailbox | None] = queue.SimpleQueue()
        self._bound: set[Mailbox] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ident = self._thread.ident

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
        """True when called on this dispatcher's own thread."""
        return threading.get_ident() == self._ident

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
        job)."""
        self._ready.put(mailbox)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the actors still bound, then the thread; waits up to ``timeout`` for it, unless
        called on the thread itself. Idempotent."""
        with self._lock:
            first = not self._stopping
            self._stopping = True
        if first:
            self._ready.put(None)
        if not self.on_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        if self.shared:
            _hosting.dispatcher = self  # an actor started here is bound here
        while (mailbox := self._ready.get()) is not None:
            try:
                mailbox.run_turn(self.throughput)
            except Exception:  # a bug in a mailbox must not end the thread of all the others
                logger.exception("A mailbox failed on %s", self._thread.name)
        with self._lock:
            left = list(self._bound)
            self._bound.clear()
        for mailbox in left:
            try:
                mailbox.stop_now()
            except Exception:
                logger.exception("Stopping an actor failed on %s", self._thread.name)
