"""Settling pykka futures that serve as deferred replies."""

from __future__ import annotations

import queue
from typing import Any

import pykka


def fail(future: pykka.Future[Any], error: BaseException) -> None:
    """Settle ``future`` with ``error``: its ``get()`` raises it in the waiting thread."""
    future.set_exception(exc_info=(type(error), error, error.__traceback__))


def settle(future: pykka.Future[Any], value: Any) -> bool:
    """Set ``future`` to ``value`` unless it is already set; True if this call set it."""
    try:
        future.set(value)
    except queue.Full:
        return False
    return True
