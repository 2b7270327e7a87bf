"""Phi accrual failure detector."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.membership.failure_detector import PhiAccrualFailureDetector


def detector_after_regular_heartbeats(
    count: int = 30, interval: float = 1.0, **options: float
) -> tuple[PhiAccrualFailureDetector, float]:
    """A detector fed ``count`` heartbeats ``interval`` apart, and the time of the last one."""
    detector = PhiAccrualFailureDetector(**options)  # type: ignore[arg-type]
    for beat in range(count):
        detector = detector.heartbeat(beat * interval)
    return detector, (count - 1) * interval


def time_when_unavailable(detector: PhiAccrualFailureDetector, last: float) -> float:
    """Seconds after ``last`` at which the detector first reports unavailable (10 ms steps)."""
    step = 0
    while detector.is_available(last + step * 0.01):
        step += 1
        assert step < 100_000, "detector never became unavailable"
    return step * 0.01


def test_unmonitored_detector_is_available_with_zero_phi() -> None:
    detector = PhiAccrualFailureDetector()

    assert not detector.is_monitoring
    assert detector.phi(1_000.0) == 0.0
    assert detector.is_available(1_000.0)


def test_first_heartbeat_starts_monitoring() -> None:
    detector = PhiAccrualFailureDetector()
    detector = detector.heartbeat(10.0)

    assert detector.is_monitoring
    assert detector.is_available(11.0)


def test_phi_crosses_default_threshold_about_four_and_a_half_seconds_after_last_heartbeat() -> None:
    detector, last = detector_after_regular_heartbeats()

    assert 4.0 < time_when_unavailable(detector, last) < 5.5
    assert detector.phi(last + 4.0) < 8.0 < detector.phi(last + 5.5)


def test_regular_heartbeats_keep_member_available() -> None:
    detector = PhiAccrualFailureDetector()
    for beat in range(200):
        detector = detector.heartbeat(float(beat))
        assert detector.is_available(beat + 0.99)
        assert detector.phi(beat + 0.99) < 1e-6


def test_pause_below_acceptable_heartbeat_pause_is_not_a_failure() -> None:
    detector, last = detector_after_regular_heartbeats()

    assert detector.is_available(last + 2.5)
    assert detector.phi(last + 2.5) < 1.0


def test_acceptable_heartbeat_pause_delays_detection_by_its_length() -> None:
    strict, last = detector_after_regular_heartbeats(acceptable_heartbeat_pause=0.0)
    lenient, _ = detector_after_regular_heartbeats(acceptable_heartbeat_pause=3.0)

    delay = time_when_unavailable(lenient, last) - time_when_unavailable(strict, last)

    assert delay == pytest.approx(3.0, abs=0.02)


def test_phi_increases_with_elapsed_time() -> None:
    detector, last = detector_after_regular_heartbeats()
    phis = [detector.phi(last + elapsed / 10) for elapsed in range(35, 60)]

    assert all(earlier < later for earlier, later in itertools.pairwise(phis))


def test_jittery_intervals_widen_the_distribution_and_delay_detection() -> None:
    steady, steady_last = detector_after_regular_heartbeats(count=100)
    jittery = PhiAccrualFailureDetector()
    jittery_last = 0.0
    for beat in range(100):
        jittery_last += 0.4 if beat % 2 else 1.6  # mean 1 s, std 0.6 s
        jittery = jittery.heartbeat(jittery_last)

    steady_delay = time_when_unavailable(steady, steady_last)
    jittery_delay = time_when_unavailable(jittery, jittery_last)

    assert jittery.is_available(jittery_last + 5.0)
    assert jittery_delay > steady_delay + 2.0


def test_heartbeat_ending_a_failure_is_left_out_of_the_history() -> None:
    detector, last = detector_after_regular_heartbeats()
    detector = detector.heartbeat(
        last + 60.0
    )  # back after a failure: the 60 s interval is not recorded

    assert 4.0 < time_when_unavailable(detector, last + 60.0) < 5.5


def test_window_forgets_old_intervals() -> None:
    detector = PhiAccrualFailureDetector(
        max_sample_size=10, acceptable_heartbeat_pause=0.0, first_heartbeat_estimate=3.0
    )
    now = 0.0
    for _ in range(50):  # slow heartbeats, then fast ones that fill the whole window
        now += 3.0
        detector = detector.heartbeat(now)
    for _ in range(10):
        now += 0.5
        detector = detector.heartbeat(now)

    assert 0.5 < time_when_unavailable(detector, now) < 1.5


def test_huge_elapsed_time_gives_finite_phi_and_unavailable() -> None:
    detector, last = detector_after_regular_heartbeats()

    for elapsed in (1e3, 1e9, 1e300):
        phi = detector.phi(last + elapsed)
        assert math.isfinite(phi)
        assert phi > 100
        assert not detector.is_available(last + elapsed)


def test_phi_before_last_heartbeat_is_zero_not_an_error() -> None:
    detector, last = detector_after_regular_heartbeats()

    assert detector.phi(last - 1e300) == 0.0


def test_heartbeat_rejects_time_going_backwards_and_non_finite_times() -> None:
    detector = PhiAccrualFailureDetector()
    detector = detector.heartbeat(5.0)

    with pytest.raises(ValueError, match="before the previous heartbeat"):
        detector = detector.heartbeat(4.0)
    with pytest.raises(ValueError, match="must be finite"):
        detector = detector.heartbeat(math.nan)
    with pytest.raises(ValueError, match="must be finite"):
        detector = detector.heartbeat(math.inf)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": -1.0}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"max_sample_size": 0}, "max_sample_size"),
        ({"min_std_deviation": 0.0}, "min_std_deviation"),
        ({"acceptable_heartbeat_pause": -0.1}, "acceptable_heartbeat_pause"),
        ({"acceptable_heartbeat_pause": math.inf}, "acceptable_heartbeat_pause"),
        ({"first_heartbeat_estimate": 0.0}, "first_heartbeat_estimate"),
    ],
)
def test_constructor_rejects_bad_values(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PhiAccrualFailureDetector(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [10.0, True, "10"])
def test_constructor_rejects_non_int_sample_size(size: object) -> None:
    with pytest.raises(TypeError, match="max_sample_size"):
        PhiAccrualFailureDetector(max_sample_size=size)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    intervals=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=40),
    elapsed=st.lists(st.floats(-5.0, 1e6), min_size=2, max_size=30),
)
def test_phi_is_monotone_non_decreasing_in_elapsed_time(
    intervals: list[float], elapsed: list[float]
) -> None:
    detector = PhiAccrualFailureDetector(max_sample_size=16)
    now = 0.0
    detector = detector.heartbeat(now)
    for interval in intervals:
        now += interval
        detector = detector.heartbeat(now)

    phis = [detector.phi(now + dt) for dt in sorted(elapsed)]

    assert all(math.isfinite(phi) and phi >= 0.0 for phi in phis)
    assert all(earlier <= later for earlier, later in itertools.pairwise(phis))
