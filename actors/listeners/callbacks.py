"""The callback runner: runs Hazelcast-style listener functions off the membership path."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pykka

from messages.local.commands import CallbackCall, RunCallbacks

__all__ = [
    "CallbackRunner",
    "in_callback",
]

logger = logging.getLogger(__name__)

_running = threading.local()


def in_callback() -> bool:
    """True in a listener function that a ``CallbackRunner`` is running (where waiting for the
    runner to run more calls would wait forever)."""
    return getattr(_running, "active", False)


class CallbackRunner(pykka.ThreadingActor):
    """Runs the calls of each batch in order; one that raises is logged and the rest still run.

    It runs on its own thread so that a slow callback never holds up the listener registry, and it
    never asks the registry, so a callback may add or remove listeners (which ask the registry).
    An asked batch is answered once its calls have run; an empty one asked is a barrier, answered
    once every batch told before it has run. A callback that hangs holds up only the callbacks
    after it, never the registry (which only tells this actor).
    """

    def on_start(self) -> None:
        _running.active = True

    def on_receive(self, message: Any) -> Any:
        match message:
            case RunCallbacks(calls=calls):
                for call in calls:
                    self._run(call)
            case _:
                return super().on_receive(message)
        return None

    @staticmethod
    def _run(call: CallbackCall) -> None:
        try:
            call.callback(call.argument)
        except BaseException:  # a listener's sys.exit() too: pykka would stop every actor for it
            logger.exception("Listener %s raised on %s", call.registration_id, call.argument)
