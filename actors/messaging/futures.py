"""Settling pykka futures that serve as deferred replies, and asking actors from a facade."""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any

import pykka

__all__ = [
    "OneShot",
    "ask",
    "fail",
    "settle",
]


class OneShot(pykka.Future[Any]):
    """The future a blocking direct ask waits on: set once (by whoever ends the ask), got by
    the one asker. Its wait is a lock held from birth and released by the set: the setter's
    wake-up of the waiter is one lock release, where a ``ThreadingFuture`` enters a condition,
    notifies its waiters' locks and makes the waiter take the condition again. Not for
    ``set_get_hook`` and the combinators built on it (``map``, ``join``...)."""

    def __init__(self) -> None:
        super().__init__()
        self._done = threading.Lock()
        self._done.acquire()  # released by the one set: what get() waits for
        self._once = threading.Lock()  # taken by the one set: a second one is ``queue.Full``
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any = None) -> None:
        if not self._once.acquire(blocking=False):
            raise queue.Full
        self._value = value
        self._done.release()

    def set_exception(self, exc_info: Any = None) -> None:
        error = (exc_info or sys.exc_info())[1]
        if not self._once.acquire(blocking=False):
            raise queue.Full
        self._error = error if error is not None else RuntimeError("unknown failure")
        self._done.release()

    def set_get_hook(self, func: Any) -> None:
        raise NotImplementedError("a OneShot future has no get hook")

    def get(self, *, timeout: float | None = None) -> Any:
        if not self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            raise pykka.Timeout(f"{timeout} seconds")
        self._done.release()  # set for good: a later get() returns at once too
        if self._error is not None:
            raise self._error
        return self._value


def fail(future: pykka.Future[Any], error: BaseException) -> bool:
    """Settle ``future`` with ``error`` unless it is already set (its ``get()`` then raises it in
    the waiting thread); True if this call set it."""
    try:
        future.set_exception(exc_info=(type(error), error, error.__traceback__))
    except queue.Full:
        return False
    return True


def settle(future: pykka.Future[Any], value: Any) -> bool:
    """Set ``future`` to ``value`` unless it is already set; True if this call set it."""
    try:
        future.set(value)
    except queue.Full:
        return False
    return True


def ask(actor: pykka.ActorRef[Any], message: object, timeout: float, name: str) -> Any:
    """``actor.ask(message)`` for a facade's caller: ``RuntimeError`` when the actor is not
    running, ``TimeoutError`` when it does not answer within ``timeout`` seconds (``name`` says
    which actor, in both messages)."""
    try:
        return actor.ask(message, timeout=timeout)
    except pykka.ActorDeadError:
        raise RuntimeError(f"{name} is not running") from None
    except pykka.Timeout:
        raise TimeoutError(f"{name} did not answer within {timeout:g} s") from None
