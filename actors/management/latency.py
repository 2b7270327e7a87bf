"""A node's event fan-out latencies, counted in buckets without importing Prometheus.

The listener registry observes one latency per membership change, and most members never
serve metrics: a member started without HTTP management should not pay for importing
``prometheus_client`` and ``http.server`` (a fifth of a member process's start-up CPU, which
200 processes starting at once on two cores all pay) nor for a Prometheus ``Histogram`` on
the registry's path. ``actors.management.metrics`` reports these counts as a Prometheus
histogram when scraped.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

__all__ = ["FANOUT_BUCKETS", "LatencyCounts", "LatencySnapshot"]

FANOUT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Seconds: a change usually reaches its listeners within a millisecond."""

LatencySnapshot = tuple[tuple[tuple[float, int], ...], float]
"""((upper bound, cumulative count), ...) ending with (+inf, total), and the sum of seconds."""


class LatencyCounts:
    """Latencies counted per bucket (upper bounds, ascending) and summed; thread-safe.

    ``observe`` is called by one actor, ``snapshot`` by a scrape on another thread: the lock
    keeps a snapshot's counts and sum from the same moment.
    """

    def __init__(self, bounds: Sequence[float] = FANOUT_BUCKETS) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("bucket bounds must be distinct and ascending")
        self._bounds = (*bounds, float("inf"))
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one latency in the first bucket whose bound it does not exceed."""
        index = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> LatencySnapshot:
        """The cumulative counts per bound and the sum, as Prometheus histograms give them."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip(self._bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return tuple(cumulative), total
