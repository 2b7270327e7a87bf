"""Phi accrual failure detection, in the manner of Akka's ``PhiAccrualFailureDetector``.

Pure and immutable: every method takes the current time (seconds, from a monotonic clock) as an
argument. ``phi`` grows with the time since the last heartbeat, scaled by the history of heartbeat
intervals; a member is available while ``phi < threshold``. With 1 s heartbeats and the defaults,
phi reaches 8 about 4.5 s after the last heartbeat.
"""

from __future__ import annotations

import copy
import math

from messages.settings import Settings

__all__ = ["PhiAccrualFailureDetector"]

# Coefficients of the logistic approximation of the standard normal CDF used by Akka:
# 1 - F(y) ~= 1 / (1 + exp(y * (1.5976 + 0.070566 * y**2))).
_LOGISTIC_LINEAR = 1.5976
_LOGISTIC_CUBIC = 0.070566
# Cap of that exponent: keeps exp() finite, so phi tops out at 700 / ln(10) ~= 304.
_MAX_EXPONENT = 700.0
_LN_10 = math.log(10.0)
_LAN = Settings.lan()


class PhiAccrualFailureDetector:
    """Suspicion level of one monitored member, from the arrival times of its heartbeats.

    An immutable value: ``heartbeat`` returns the detector that has also seen that heartbeat, so
    the protocol core holds detectors as plain values. Intervals are kept in a window of
    ``max_sample_size`` with a running sum and sum of squares, so ``phi`` is O(1). The first
    heartbeat seeds the window with ``first_heartbeat_estimate`` +- a quarter of it, as Akka does.
    ``acceptable_heartbeat_pause`` is added to the mean, so shorter pauses are not failures.
    """

    __slots__ = (
        "_interval_sum",
        "_intervals",
        "_last_heartbeat",
        "_squared_interval_sum",
        "acceptable_heartbeat_pause",
        "first_heartbeat_estimate",
        "max_sample_size",
        "min_std_deviation",
        "threshold",
    )

    def __init__(
        self,
        threshold: float = _LAN.phi_threshold,
        max_sample_size: int = 1000,
        min_std_deviation: float = _LAN.min_std_deviation,
        acceptable_heartbeat_pause: float = _LAN.acceptable_heartbeat_pause,
        first_heartbeat_estimate: float = _LAN.heartbeat_interval,
    ) -> None:
        _require_positive("threshold", threshold)
        if isinstance(max_sample_size, bool) or not isinstance(max_sample_size, int):
            raise TypeError(f"max_sample_size must be an int, not {type(max_sample_size).__name__}")
        if max_sample_size < 1:
            raise ValueError(f"max_sample_size must be > 0, got {max_sample_size}")
        _require_positive("min_std_deviation", min_std_deviation)
        if not (math.isfinite(acceptable_heartbeat_pause) and acceptable_heartbeat_pause >= 0):
            raise ValueError(
                f"acceptable_heartbeat_pause must be >= 0 seconds, got {acceptable_heartbeat_pause}"
            )
        _require_positive("first_heartbeat_estimate", first_heartbeat_estimate)
        self.threshold = threshold
        self.max_sample_size = max_sample_size
        self.min_std_deviation = min_std_deviation
        self.acceptable_heartbeat_pause = acceptable_heartbeat_pause
        self.first_heartbeat_estimate = first_heartbeat_estimate
        self._intervals: tuple[float, ...] = ()
        self._interval_sum = 0.0
        self._squared_interval_sum = 0.0
        self._last_heartbeat: float | None = None

    @property
    def is_monitoring(self) -> bool:
        """True once the first heartbeat has arrived."""
        return self._last_heartbeat is not None

    @property
    def last_heartbeat(self) -> float | None:
        """When the latest heartbeat arrived (None before the first)."""
        return self._last_heartbeat

    def heartbeat(self, now: float) -> PhiAccrualFailureDetector:
        """This detector after a heartbeat arriving at ``now``.

        The interval that ends a failure (phi above the threshold) is not recorded: a long
        pause would skew the statistics.
        """
        if not math.isfinite(now):
            raise ValueError(f"heartbeat time must be finite, got {now}")
        last = self._last_heartbeat
        recorded: tuple[float, ...]
        if last is None:
            std_deviation = self.first_heartbeat_estimate / 4
            recorded = (
                self.first_heartbeat_estimate - std_deviation,
                self.first_heartbeat_estimate + std_deviation,
            )
        elif now < last:
            raise ValueError(f"heartbeat time {now} is before the previous heartbeat at {last}")
        elif self.is_available(now):
            recorded = (now - last,)
        else:
            recorded = ()
        after = copy.copy(self)
        after._last_heartbeat = now
        for interval in recorded:
            after._record(interval)
        return after

    def paused(self, seconds: float, now: float) -> PhiAccrualFailureDetector:
        """This detector at ``now`` with up to ``seconds`` of silence not counted: the monitoring
        member itself was paused (a stalled process), which says nothing about the monitored one."""
        if self._last_heartbeat is None or seconds <= 0:
            return self
        after = copy.copy(self)
        after._last_heartbeat = min(self._last_heartbeat + seconds, now)
        return after

    def phi(self, now: float) -> float:
        """Suspicion level at ``now``: -log10(1 - F(time since last heartbeat)); 0 before any.

        Finite for any ``now`` (capped at about 304) and non-decreasing in ``now``.
        """
        if self._last_heartbeat is None:
            return 0.0
        count = len(self._intervals)
        mean = self._interval_sum / count
        variance = max(self._squared_interval_sum / count - mean * mean, 0.0)
        std_deviation = max(math.sqrt(variance), self.min_std_deviation)
        y = (now - self._last_heartbeat - mean - self.acceptable_heartbeat_pause) / std_deviation
        exponent = min(y * (_LOGISTIC_LINEAR + _LOGISTIC_CUBIC * y * y), _MAX_EXPONENT)
        # -log10(1 / (1 + e**x)) == log10(1 + e**x): no cancellation on either side of the mean.
        return math.log1p(math.exp(exponent)) / _LN_10

    def is_available(self, now: float) -> bool:
        """True while phi is below the threshold (always, before the first heartbeat)."""
        return self.phi(now) < self.threshold

    def _record(self, interval: float) -> None:
        """Add ``interval`` to this (fresh, not yet shared) copy's window."""
        intervals = self._intervals
        if len(intervals) == self.max_sample_size:
            evicted = intervals[0]
            self._interval_sum -= evicted
            self._squared_interval_sum -= evicted * evicted
            intervals = intervals[1:]
        self._intervals = (*intervals, interval)
        self._interval_sum += interval
        self._squared_interval_sum += interval * interval


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
