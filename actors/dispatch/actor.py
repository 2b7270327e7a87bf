"""DispatchedActor: a pykka actor whose mailbox a shared ``Dispatcher`` thread runs.

It plugs into the three hooks pykka keeps for new actor types (``_create_actor_inbox``,
``_create_future``, ``_start_actor_loop``), so it stays a pykka actor: ``ActorRef``, ``tell``,
``ask``, proxies, futures, the registry, ``on_start``/``on_stop``/``on_failure``, ``stop()`` while
it is busy. Each message is handled as pykka's own loop handles it (``Actor._actor_loop_running``,
one message per call here). Which dispatcher: the one set on the actor (``dispatcher``), else the
one hosting the starting thread (``Dispatcher.hosting``, or a shared dispatcher's own thread), else
a dispatcher of its own, which ends with the actor (then it runs as a ``ThreadingActor`` would).
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from typing import Any, TypeVar

import pykka
from pykka import ActorDeadError, ActorRegistry

from actors.dispatch.dispatcher import Dispatcher, DispatcherDeadlockError

__all__ = ["DispatchedActor", "DispatchedFuture", "DispatchedInbox", "tell_now"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class DispatchedFuture(pykka.ThreadingFuture[T]):
    """A ``ThreadingFuture`` that knows which dispatcher runs the actor that will set it, so that a
    blocking ``get()`` on that very thread raises ``DispatcherDeadlockError`` instead of waiting
    forever (the inbox tells it, when the ask is put in)."""

    def __init__(self) -> None:
        super().__init__()
        self.dispatcher: Dispatcher | None = None

    def get(self, *, timeout: float | None = None) -> Any:
        dispatcher = self.dispatcher
        if (
            dispatcher is not None
            and self._result is None
            and self._get_hook is None
            and dispatcher.on_thread()
        ):
            raise DispatcherDeadlockError(
                "a blocking get() on the dispatcher thread that must answer it would never end"
            )
        return super().get(timeout=timeout)


class DispatchedInbox:
    """pykka's ``ActorInbox`` protocol over a deque, for one dispatched actor: ``put`` queues the
    actor on its dispatcher when it is not queued already; ``get``/``empty`` never block (only
    the dispatcher takes mail, and only when there is some). ``_store``/``_take``/``__len__``
    are the queue discipline, which a subclass may change (as ``queue.Queue``'s hooks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._envelopes: collections.deque[Any] = collections.deque()
        self._actor: DispatchedActor | None = None
        self._dispatcher: Dispatcher | None = None
        self._scheduled = False

    def _store(self, envelope: Any) -> None:
        self._envelopes.append(envelope)

    def _take(self) -> Any:
        return self._envelopes.popleft()

    def __len__(self) -> int:
        return len(self._envelopes)

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        reply_to = getattr(envelope, "reply_to", None)
        with self._lock:
            self._store(envelope)
            dispatcher = self._dispatcher
            if isinstance(reply_to, DispatchedFuture):
                reply_to.dispatcher = dispatcher
            if dispatcher is None or self._scheduled:
                return
            self._scheduled = True
        dispatcher.execute(self._actor)  # type: ignore[arg-type]  # bound with the dispatcher

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._lock:
            return self._take()

    def empty(self) -> bool:
        return len(self) == 0

    def qsize(self) -> int:
        return len(self)

    def bind(self, actor: DispatchedActor, dispatcher: Dispatcher) -> None:
        """From ``_start_actor_loop``: queue the actor for its first turn (its ``on_start``)."""
        with self._lock:
            self._actor = actor
            self._dispatcher = dispatcher
            for envelope in self._envelopes:  # told before the start: rare, but never lost
                reply_to = getattr(envelope, "reply_to", None)
                if isinstance(reply_to, DispatchedFuture):
                    reply_to.dispatcher = dispatcher
            self._scheduled = True
        dispatcher.execute(actor)

    def run_now(self, message: Any) -> bool:
        """On the dispatcher's thread, with the actor idle (started, not stopped, no mail, not
        in a turn): handle ``message`` now, as a turn of one message; False (nothing done)
        otherwise. What is told to the actor meanwhile waits for a turn, as usual."""
        actor, dispatcher = self._actor, self._dispatcher
        if actor is None or dispatcher is None or not dispatcher.on_thread():
            return False
        with self._lock:
            if self._scheduled:  # unscheduled is empty: ``put`` schedules what it stores
                return False
            self._scheduled = True  # in a turn: what comes meanwhile is queued behind it
        actor.run_one(message)
        return True

    def turn_done(self) -> None:
        """The actor's turn ended: queue it again if mail waits, else it is idle."""
        with self._lock:
            if not len(self):
                self._scheduled = False
                return
            dispatcher = self._dispatcher
        assert dispatcher is not None
        assert self._actor is not None
        dispatcher.execute(self._actor)

    def close(self) -> None:
        """The actor stopped: never queue it again."""
        with self._lock:
            self._scheduled = True


class DispatchedActor(pykka.Actor):
    """A pykka actor run by a ``Dispatcher`` (see the module docstring). Its handlers must never
    block: they share the thread with every other actor of the dispatcher."""

    dispatcher: Dispatcher | None = None
    """The dispatcher to run on; set before ``start`` returns (see the module docstring)."""

    actor_inbox: DispatchedInbox
    _turns_began: bool

    @staticmethod
    def _create_actor_inbox() -> DispatchedInbox:
        return DispatchedInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return DispatchedFuture()

    def _start_actor_loop(self) -> None:
        dispatcher = self.dispatcher or Dispatcher.current()
        if dispatcher is None:
            dispatcher = Dispatcher(f"{type(self).__name__}-dispatcher", shared=False)
        self.dispatcher = dispatcher
        self._turns_began = False
        if not dispatcher.bind(self):
            self._stop()
            self.actor_inbox.close()
            raise ActorDeadError(f"{dispatcher} is stopping: {self} cannot start on it")
        self.actor_inbox.bind(self, dispatcher)

    def run_turn(self, throughput: int) -> None:
        """On the dispatcher thread: ``on_start`` first, then up to ``throughput`` messages."""
        if not self._turns_began:
            self._turns_began = True
            self._actor_loop_setup()
        inbox = self.actor_inbox
        for _ in range(throughput):
            if self.actor_stopped.is_set() or inbox.empty():
                break
            self._handle_envelope(inbox.get())
        if self.actor_stopped.is_set():
            self._end()
        else:
            inbox.turn_done()

    def run_one(self, message: Any) -> None:
        """A turn of the one ``message`` (``DispatchedInbox.run_now``), on the dispatcher's
        thread."""
        self._handle(message, None)
        if self.actor_stopped.is_set():
            self._end()
        else:
            self.actor_inbox.turn_done()

    def stop_now(self) -> None:
        """Its dispatcher stops: stop as ``ActorRef.stop`` would, failing the asks left."""
        if not self.actor_stopped.is_set():
            self._stop()
        self._end()

    def _end(self) -> None:
        self.actor_inbox.close()
        self._actor_loop_teardown()
        dispatcher = self.dispatcher
        assert dispatcher is not None
        dispatcher.unbind(self)
        if not dispatcher.shared:
            dispatcher.stop()

    def _handle_envelope(self, envelope: Any) -> None:
        self._handle(envelope.message, envelope.reply_to)

    def _handle(self, message: Any, reply_to: pykka.Future[Any] | None) -> None:
        """One pass of pykka's ``Actor._actor_loop_running``, with its failure semantics."""
        try:
            response = self._handle_receive(message)
            if reply_to is not None:
                reply_to.set(response)
        except Exception:
            if reply_to is not None:
                logger.info("Exception returned from %s to caller:", self, exc_info=True)
                reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            logger.debug("%r in %s. Stopping all actors.", sys.exc_info()[1], self)
            self._stop()
            # stop_all waits for every actor, some of them on this thread: from another one.
            threading.Thread(target=ActorRegistry.stop_all, name="stop-all", daemon=True).start()


def tell_now(actor: pykka.ActorRef[Any], message: Any) -> None:
    """``actor.tell(message)``, but when ``actor`` is a ``DispatchedActor`` idle on this very
    thread's dispatcher, it handles ``message`` now, in this call, instead of in a turn later
    in the dispatcher's pass: no inbox, no queueing of its mailbox. Its order is kept: it runs
    only with nothing of its own waiting or running, and what it is told meanwhile is queued
    behind. Only for a caller that holds no lock and is in no state the handler could see half
    done (the I/O thread's read, an actor handing a message on at the end of its own turn):
    the handler runs on its stack. ``ActorDeadError`` as ``tell``."""
    inbox = actor.actor_inbox
    if not (isinstance(inbox, DispatchedInbox) and inbox.run_now(message)):
        actor.tell(message)
