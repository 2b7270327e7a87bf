"""Outbox: the tells and asks of the callers' threads, waiting for the router in one queue.

A pykka tell per message costs an envelope, a lock and a dispatcher turn on both sides of it;
with many messages in flight that, not the network, bounds a node's throughput. So ``RemoteRef``
puts what it sends here, and only a message that finds the router asleep (no ``DRAIN`` told and
not yet answered by an empty outbox) tells it ``DRAIN`` (or, with nothing queued, goes to it
straight away: a lone ask takes one hop); the router then takes what is queued (``take``, a
bounded batch) and sends it as a batch. A caller that finds the router awake takes no lock: under
load, the common case costs an append. The router takes everything left before a
publish (``RouterActor``), so a thread's tells and asks still go before the publish it makes next.
Bounded by the flow gate: each message here holds its place in it. Thread-safe.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable

from messages.local.routing import Admitted

__all__ = ["DRAIN", "DrainOutbox", "Outbox"]


class DrainOutbox:
    """Outbox -> router: take what waits in the outbox."""


DRAIN = DrainOutbox()


class Outbox:
    """Messages admitted by the callers' threads, in their order, for the router to take."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # for waking the router, never for queueing
        self._queued: collections.deque[Admitted] = collections.deque()
        self._awake = False  # a DRAIN is told, and the router has not found the outbox empty since
        self._closed = False

    def put(
        self,
        admitted: Admitted,
        wake: Callable[[], None],
        send: Callable[[Admitted], None],
    ) -> None:
        """Queue ``admitted``, calling ``wake`` (which tells the router ``DRAIN``) when the router
        is asleep; or, when it is asleep and nothing waits here, hand it over at once with
        ``send`` (a lone ask takes one hop, as it would without the outbox), which wakes the
        router as ``DRAIN`` does: after it, the router takes what came meanwhile. Raises
        ``RuntimeError`` once the router has stopped; what ``wake`` or ``send`` raise
        (``ActorDeadError``), with ``admitted`` taken back."""
        if self._closed:
            raise _stopped()
        if self._awake:
            self._queued.append(admitted)
            if self._closed:  # closed meanwhile, maybe after ``close`` took what was left
                self._take_back(admitted)
                return
            if self._awake:
                return
            with self._lock:  # it fell asleep meanwhile, and may not have seen this one
                if not self._awake:
                    self._wake(admitted, wake)
            return
        with self._lock:
            if self._closed:
                raise _stopped()
            if self._awake:
                self._queued.append(admitted)
            elif not self._queued:  # it goes first, and wakes the router as DRAIN would
                self._awake = True
                try:
                    send(admitted)
                except BaseException:
                    self._awake = False
                    raise
            else:
                self._queued.append(admitted)
                self._wake(admitted, wake)

    def _wake(self, admitted: Admitted, wake: Callable[[], None]) -> None:
        """Wake the router for what is queued (holding the lock)."""
        self._awake = True
        try:
            wake()
        except BaseException:
            self._awake = False
            with contextlib.suppress(ValueError):
                self._queued.remove(admitted)
            raise

    def _take_back(self, admitted: Admitted) -> None:
        """``admitted`` came after ``close``: raise for it, unless ``close`` took it along (the
        router's ``on_stop`` then ends it, as it does everything else left)."""
        try:
            self._queued.remove(admitted)
        except ValueError:
            return
        raise _stopped()

    def take(self, limit: int, wake: Callable[[], None]) -> list[Admitted]:
        """Up to ``limit`` of the messages queued, oldest first. The router is asleep after it,
        unless some are left (or came meanwhile): then ``wake`` is called for them, so a batch
        stays one short turn of the router's thread, and the next comes after what else waits
        for it."""
        queued = self._queued
        taken: list[Admitted] = []
        with contextlib.suppress(IndexError):
            for _ in range(limit):
                taken.append(queued.popleft())
        with self._lock:
            # Asleep first, then look: a put that came after the look sees the router asleep.
            self._awake = False
            if queued:
                self._awake = True
                wake()
        return taken

    def close(self) -> list[Admitted]:
        """The router stops: what is left, and a ``RuntimeError`` for every later ``put``."""
        with self._lock:
            self._closed = True
            self._awake = True  # nobody wakes a stopped router
            left: list[Admitted] = []
            with contextlib.suppress(IndexError):  # a put appending meanwhile is taken or sees
                while True:  # itself left behind (``_take_back``), never cleared unseen
                    left.append(self._queued.popleft())
        return left


def _stopped() -> RuntimeError:
    return RuntimeError("this node has stopped: nothing more can be sent")
