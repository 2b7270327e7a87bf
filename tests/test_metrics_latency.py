"""Fan-out latencies counted without Prometheus, reported as Prometheus reports a histogram,
and a member that serves no metrics never imports ``prometheus_client``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from actors.management.latency import FANOUT_BUCKETS, LatencyCounts
from actors.management.metrics import fanout_metric

LATENCIES = (0.0, 0.00005, 0.0001, 0.0003, 0.004, 0.2, 1.0, 1.5, 30.0)


class _Fanout(Collector):
    def __init__(self, latencies: LatencyCounts) -> None:
        self._latencies = latencies

    def collect(self) -> list[Metric]:
        return [fanout_metric(self._latencies)]


def test_counts_expose_as_a_prometheus_histogram_of_the_same_observations() -> None:
    ours = LatencyCounts()
    theirs = CollectorRegistry()
    histogram = Histogram(
        "membership_event_fanout_seconds",
        "Seconds from a membership change until the listener registry has told every listener",
        buckets=FANOUT_BUCKETS,
        registry=theirs,
    )
    for seconds in LATENCIES:
        ours.observe(seconds)
        histogram.observe(seconds)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fanout(ours))

    def series(body: bytes) -> list[bytes]:
        return [line for line in body.splitlines() if not line.startswith(b"#")]

    assert series(generate_latest(registry)) == [
        line for line in series(generate_latest(theirs)) if b"_created" not in line
    ]


def test_a_snapshot_is_cumulative_and_ends_with_the_total() -> None:
    counts = LatencyCounts((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 2.0):
        counts.observe(seconds)
    buckets, total = counts.snapshot()
    assert buckets == ((0.1, 2), (1.0, 3), (float("inf"), 4))
    assert total == pytest.approx(2.65)


@pytest.mark.parametrize("bounds", [(), (1.0, 0.5), (0.5, 0.5)])
def test_bounds_must_be_distinct_and_ascending(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        LatencyCounts(bounds)


def test_a_member_without_http_management_never_imports_prometheus() -> None:
    script = textwrap.dedent(
        """
        import sys
        import actors

        node = actors.start_member("solo", port=0)
        try:
            assert node.cluster.size() == 1
            print(sorted(m for m in sys.modules if m.startswith(("prometheus", "http.server"))))
            node.metrics
            print("prometheus_client" in sys.modules)
        finally:
            node.stop()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]
