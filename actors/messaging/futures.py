"""Settling pykka futures that serve as deferred replies, and asking actors from a facade."""

from __future__ import annotations

import queue
from typing import Any

import pykka

__all__ = [
    "ask",
    "fail",
    "settle",
]


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
