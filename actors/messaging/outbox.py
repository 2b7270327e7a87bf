"""Outbox: the tells and asks of the callers' threads, waiting for the router in one queue.

A pykka tell per message costs an envelope, a lock and a dispatcher turn on both sides of it;
with many messages in flight that, not the network, bounds a node's throughput. So ``RemoteRef``
puts what it sends here and tells the router ``DRAIN`` only when the outbox was empty (no
wake-up is pending); the router then takes what is queued (``take``, a bounded batch) and sends
it as a batch. Order is kept: one queue, taken from its head, and every wake-up told under the
outbox's lock, so one is in the router's inbox, while anything waits here, before whatever a caller
tells the router after its ``put``. Bounded by the flow gate: each message here holds its place in
it. Thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from messages.local.routing import Admitted

__all__ = ["DrainOutbox", "Outbox"]


class DrainOutbox:
    """Outbox -> router: take what waits in the outbox."""


DRAIN = DrainOutbox()


class Outbox:
    """Messages admitted by the callers' threads, in their order, for the router to take."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[Admitted] = []
        self._closed = False

    def put(self, admitted: Admitted, wake: Callable[[], None]) -> None:
        """Queue ``admitted``, calling ``wake`` (which tells the router ``DRAIN``) when the outbox
        was empty. Raises ``RuntimeError`` once the router has stopped; what ``wake`` raises
        (``ActorDeadError``), with ``admitted`` taken back."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this node has stopped: nothing more can be sent")
            self._queued.append(admitted)
            if len(self._queued) == 1:
                try:
                    wake()
                except BaseException:
                    self._queued.clear()
                    raise

    def take(self, limit: int, wake: Callable[[], None]) -> list[Admitted]:
        """Up to ``limit`` of the messages queued, oldest first. When some are left, ``wake`` is
        called (under the lock, as ``put`` does) for the rest: a batch stays one short turn of
        the router's thread, and later ones come after what else waits for it."""
        with self._lock:
            queued = self._queued[:limit]
            del self._queued[:limit]
            if self._queued:
                wake()
        return queued

    def close(self) -> list[Admitted]:
        """The router stops: what is left, and a ``RuntimeError`` for every later ``put``."""
        with self._lock:
            self._closed = True
            queued, self._queued = self._queued, []
        return queued
