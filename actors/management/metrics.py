"""Prometheus metrics of one member: a collector that reads a snapshot of it on each scrape.

Nothing on the protocol's path updates a Prometheus metric. Everything is read when Prometheus
scrapes: the member's view and detectors from its membership actor (one ask,
``NodeView.health``), the counters the I/O thread keeps anyway (``Traffic``, the link count),
and the fan-out latencies the listener registry counts (``actors.management.latency``: a member
that serves no metrics never imports this module). Each node has its own
``CollectorRegistry``, so several nodes in one process do not clash, and nothing lands in the
library's global registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from actors.management.latency import LatencyCounts
from actors.management.view import NodeView
from actors.transport.traffic import TrafficCount
from messages.local.commands import HealthReport
from messages.member import MemberStatus

__all__ = ["NodeCollector", "fanout_metric", "node_registry"]

_STATUSES = tuple(status for status in MemberStatus if status is not MemberStatus.REMOVED)


class NodeCollector(Collector):
    """The metrics of the member ``view`` shows, read at each scrape.

    A scrape raises ``Unavailable`` when the membership actor does not answer in time.
    """

    def __init__(self, view: NodeView, fanout: LatencyCounts) -> None:
        self._view = view
        self._fanout = fanout

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self._view.health())

    def _families(self, health: HealthReport | None) -> Iterator[Metric]:
        members = GaugeMetricFamily(
            "membership_members", "Members in this member's view, by status", labels=["status"]
        )
        unreachable = GaugeMetricFamily(
            "membership_unreachable_members", "Members some member finds unreachable"
        )
        converged = GaugeMetricFamily(
            "membership_converged", "1 when every member has seen this member's view, else 0"
        )
        leader = GaugeMetricFamily("membership_is_leader", "1 when this member leads, else 0")
        phi = GaugeMetricFamily(
            "membership_detector_phi",
            "Suspicion level (phi) of each member this member monitors by heartbeats",
            labels=["member", "uuid"],
        )
        local_health = GaugeMetricFamily(
            "membership_local_health", "Lifeguard local health score (0: healthy)"
        )
        links = GaugeMetricFamily("membership_links", "Open links (members and clients)")
        if health is not None:
            state = health.state
            for status in _STATUSES:
                count = sum(1 for member in state.members if member.status is status)
                members.add_metric([status.name], count)
            unreachable.add_metric([], len(state.unreachable))
            converged.add_metric([], int(health.converged))
            leader.add_metric([], int(state.leader == self._view.address))
            addresses = {member.uuid: str(member.address) for member in state.members}
            for uuid, value in sorted(health.phi.items()):
                phi.add_metric([addresses.get(uuid, ""), uuid], value)
            local_health.add_metric([], health.local_health)
            links.add_metric([], self._view.link_count())
        yield from (members, unreachable, converged, leader, phi, local_health, links)
        received, sent = self._view.traffic.snapshot() if health is not None else ({}, {})
        yield from _traffic("received", received)
        yield from _traffic("sent", sent)
        yield fanout_metric(self._fanout)


def fanout_metric(latencies: LatencyCounts) -> Metric:
    """The fan-out latencies as a Prometheus histogram family."""
    buckets, total = latencies.snapshot()
    histogram = HistogramMetricFamily(
        "membership_event_fanout_seconds",
        "Seconds from a membership change until the listener registry has told every listener",
    )
    histogram.add_metric([], [(_le(bound), count) for bound, count in buckets], total)
    return histogram


def _le(bound: float) -> str:
    """A bucket's ``le`` label, written as Prometheus clients write it."""
    return "+Inf" if math.isinf(bound) else repr(bound)


def _traffic(direction: str, counts: dict[str, TrafficCount]) -> Iterator[Metric]:
    messages = CounterMetricFamily(
        f"membership_messages_{direction}",
        f"Wire messages {direction}, by type (Gossip and GossipStatus are the gossip)",
        labels=["type"],
    )
    size = CounterMetricFamily(
        f"membership_{direction}_bytes",
        f"Bytes of the wire messages {direction} (frame headers included), by type",
        labels=["type"],
    )
    for name, count in sorted(counts.items()):
        messages.add_metric([name], count.messages)
        size.add_metric([name], count.bytes)
    yield messages
    yield size


def node_registry(view: NodeView, fanout: LatencyCounts) -> CollectorRegistry:
    """A registry of its own holding the node's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(view, fanout))
    return registry
