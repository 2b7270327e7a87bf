"""Timers of one node: a heap of deadlines that its I/O thread fires (no thread per timer).

``TimerQueue`` is plain data, driven by whoever owns it with the current time: the ``IoLoop`` asks
it for the next deadline (its ``select`` timeout) and for the entries that are due. A ``Timer`` is
the handle an actor keeps; ``cancel`` may be called from any thread. ``on_grid`` puts a periodic
tick on the wall clock's grid of its period, so that the members of a cluster tick together.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

__all__ = [
    "Timer",
    "TimerQueue",
    "on_grid",
]

_COMPACT_MIN = 64  # a heap this small is never compacted


def on_grid(delay: float, wall: float) -> float:
    """The delay, from wall-clock time ``wall``, to the multiple of ``delay`` on the wall clock
    nearest to ``wall + delay``: between ``delay / 2`` and ``3 * delay / 2``, and ``delay`` again
    for a tick set from the grid. A tick that sets the next one ``delay`` later keeps its period,
    but every process that does so ticks at the same moments (a clock shared by the machines
    within NTP's milliseconds), so what they send each other at a tick arrives together, and
    each reads it in one wake-up instead of one per sender (docs/architecture.md, *Gossip*)."""
    if delay <= 0:
        return delay
    at = wall + delay
    return max(round(at / delay) * delay - wall, 0.0)


class Timer:
    """A pending call; once cancelled (from any thread) it never fires again."""

    __slots__ = ("action", "cancelled", "interval")

    def __init__(self, action: Callable[[], bool], interval: float | None) -> None:
        self.action = action  # returns False when it should not run again (its target is gone)
        self.interval = interval
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerQueue:
    """Timers by deadline.

    Only its owner thread calls ``add``, ``next_deadline`` and ``fire_due``.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()  # ties fire in the order they were added
        self._compact_at = _COMPACT_MIN

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, deadline: float, timer: Timer) -> Timer:
        heapq.heappush(self._heap, (deadline, next(self._sequence), timer))
        if len(self._heap) > self._compact_at:
            self._compact()
        return timer

    def _compact(self) -> None:
        """Drop the cancelled timers (each holds what its action refers to, a link, say, until
        its deadline): the heap stays within twice the live timers, at O(1) per ``add``."""
        self._heap[:] = [entry for entry in self._heap if not entry[2].cancelled]  # in place:
        heapq.heapify(self._heap)  # ``fire_due`` may be walking it
        self._compact_at = max(_COMPACT_MIN, 2 * len(self._heap))

    def call_once(self, deadline: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` (in the owner thread) once at ``deadline``, unless cancelled."""

        def run() -> bool:
            action()
            return False

        return self.add(deadline, Timer(run, None))

    def next_deadline(self) -> float | None:
        """The earliest deadline of a live timer (cancelled ones are dropped on the way)."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire_due(self, now: float) -> int:
        """Run every timer due at ``now``, in deadline order; periodic ones go back in at their
        next deadline, or an interval from ``now`` when the loop is that late (missed periods are
        skipped, not fired in a burst). Returns how many ran."""
        heap = self._heap
        fired = 0
        while heap and heap[0][0] <= now:
            deadline, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            fired += 1
            keep = timer.action()
            if timer.interval is not None and keep and not timer.cancelled:
                next_deadline = deadline + timer.interval
                self.add(next_deadline if next_deadline > now else now + timer.interval, timer)
        return fired
