"""Settling pykka futures that serve as deferred replies."""

from __future__ import annotations

from typing import Any

import pykka


def fail(future: pykka.Future[Any], error: BaseException) -> None:
    """Settle ``future`` with ``error``: its ``get()`` raises it in the waiting thread."""
    future.set_exception(exc_info=(type(error), error, error.__traceback__))
