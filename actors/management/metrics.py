"""Prometheus metrics of one member: a collector that reads a snapshot of it on each scrape.

Nothing on the protocol's path updates a Prometheus metric but the fan-out latency histogram
(one ``observe`` per membership change, in the listener registry). Everything else is read
when Prometheus scrapes: the member's view and detectors from its membership actor (one ask,
``NodeView.health``), and the counters the I/O thread keeps anyway (``Traffic``, the link
count). Each node has its own ``CollectorRegistry``, so several nodes in one process do not
clash, and nothing lands in the library's global registry.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.management.view import NodeView
from actors.transport.traffic import TrafficCount
from messages.local.commands import HealthReport
from messages.member import MemberStatus

__all__ = ["FANOUT_BUCKETS", "NodeCollector", "fanout_histogram", "node_registry"]

FANOUT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Seconds: a change usually reaches its listeners within a millisecond."""

_STATUSES = tuple(status for status in MemberStatus if status is not MemberStatus.REMOVED)


def fanout_histogram() -> Histogram:
    """The histogram of a node's event fan-out latencies, in no registry (``NodeCollector``
    reports it)."""
    return Histogram(
        "membership_event_fanout_seconds",
        "Seconds from a membership change until the listener registry has told every listener",
        buckets=FANOUT_BUCKETS,
        registry=None,
    )


class NodeCollector(Collector):
    """The metrics of the member ``view`` shows, read at each scrape.

    A scrape raises ``Unavailable`` when the membership actor does not answer in time.
    """

    def __init__(self, view: NodeView, fanout: Histogram) -> None:
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
        yield from self._fanout.collect()


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


def node_registry(view: NodeView, fanout: Histogram) -> CollectorRegistry:
    """A registry of its own holding the node's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(view, fanout))
    return registry
