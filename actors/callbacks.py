"""The callback runner: runs Hazelcast-style listener functions off the membership path."""

from __future__ import annotations

import logging
from typing import Any

import pykka

from messages.commands import CallbackCall, RunCallbacks

logger = logging.getLogger(__name__)


class CallbackRunner(pykka.ThreadingActor):
    """Runs the calls of each batch in order; one that raises is logged and the rest still run.

    It runs on its own thread so that a slow callback never holds up the listener registry, and it
    never asks the registry, so a callback may add or remove listeners (which ask the registry).
    """

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
            call.callback(call.member)
        except Exception:
            logger.exception(
                "Membership listener %s raised on %s", call.registration_id, call.member
            )
