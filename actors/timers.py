"""Periodic messages to an actor: timers are scheduled tells, cancelled on stop."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pykka

logger = logging.getLogger(__name__)


class Ticker:
    """Tells ``message`` to ``target`` every ``interval`` seconds until cancelled or the target dies."""

    def __init__(self, target: pykka.ActorRef[Any], message: object, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"Ticker interval must be positive, got {interval}")
        self._target = target
        self._message = message
        self._interval = interval
        self._cancelled = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"ticker-{type(message).__name__}", daemon=True
        )
        self._thread.start()

    def cancel(self) -> None:
        self._cancelled.set()

    def _run(self) -> None:
        while not self._cancelled.wait(self._interval):
            try:
                self._target.tell(self._message)
            except pykka.ActorDeadError:
                logger.debug("Ticker target %s is dead; ticker ends", self._target)
                return


class Timeout:
    """Tells ``message`` to ``target`` once after ``delay`` seconds unless cancelled first."""

    def __init__(self, target: pykka.ActorRef[Any], message: object, delay: float) -> None:
        self._target = target
        self._message = message
        self._timer = threading.Timer(max(delay, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        try:
            self._target.tell(self._message)
        except pykka.ActorDeadError:
            logger.debug("Timeout target %s is dead", self._target)
