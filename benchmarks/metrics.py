"""The ``/metrics`` scrape of a member at 100 members, and what its parts cost.

Usage: ``python benchmarks/metrics.py [--members N] [--quick]``. Prints ``name: value`` lines.
The 100 members are faked, not run: a stand-in membership actor answers ``GetHealth`` with a
``HealthReport`` of N members (5 of them unreachable, one of them leaving, 5 monitored by
heartbeats as ``monitored_by`` gives), beside traffic counters with every wire message type
and a fan-out histogram with observations. Everything else is the real path: the
``ManagementServer`` on 127.0.0.1, its one thread, the endpoint, the ``NodeCollector`` asking
the actor (a pykka ask) and ``prometheus_client.generate_latest``; the client is
``http.client``, one connection per scrape (the server speaks HTTP/1.0). Medians of many
scrapes; also the collector alone (no HTTP), and a real one-member node's scrape for scale.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import pykka
from prometheus_client import generate_latest
from report import Report

import actors
from actors.management.endpoints import Endpoints
from actors.management.latency import LatencyCounts
from actors.management.metrics import node_registry
from actors.management.server import ManagementServer
from actors.management.view import NodeView
from actors.transport.traffic import Traffic
from messages.address import Address
from messages.events import CurrentClusterState
from messages.local.commands import GetHealth, HealthReport
from messages.member import Member, MemberStatus
from messages.wire.codec import WIRE_TYPES

TARGETS = {"scrape_ms_median": 5.0}


class FakeMembership(pykka.ThreadingActor):
    """Answers ``GetHealth`` as a member's membership actor would, with a fixed report."""

    def __init__(self, report: HealthReport) -> None:
        super().__init__()
        self._report = report

    def on_receive(self, message: Any) -> Any:
        return self._report if isinstance(message, GetHealth) else None


def fake_report(size: int) -> HealthReport:
    members = tuple(
        Member.create(Address(f"10.0.{i // 250}.{i % 250 + 1}", 5701)).with_status(
            MemberStatus.LEAVING if i == 7 else MemberStatus.UP, up_number=i + 1
        )
        for i in range(size)
    )
    state = CurrentClusterState(
        version=size * 3,
        members=members,
        unreachable=frozenset(m.uuid for m in members[-5:]),
        leader=members[0].address,
    )
    phi = {member.uuid: 0.05 * i for i, member in enumerate(members[1:6])}
    return HealthReport(state=state, joined=True, converged=False, phi=phi, local_health=0)


def fake_traffic() -> Traffic:
    traffic = Traffic()
    for wire_type in WIRE_TYPES:  # every type the wire codec knows, by name
        message = type(wire_type.__name__, (), {})()
        for count in range(50):
            traffic.received(message, 100 + count)
            traffic.sent(message, 120 + count)
    return traffic


def timed(action: Callable[[], object], count: int) -> list[float]:
    """Milliseconds per call, ``count`` calls (after a few not counted)."""
    for _ in range(5):
        action()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def scrape(address: Address) -> Callable[[], bytes]:
    def get() -> bytes:
        connection = http.client.HTTPConnection(address.host, address.port, timeout=10)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body)
            return body
        finally:
            connection.close()

    return get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="200 scrapes instead of 2,000")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 200 if args.quick else 2000
    report = Report(TARGETS)
    report.environment()
    report("prometheus_client_version", version("prometheus-client"))
    report("members", args.members)

    fake = FakeMembership.start(fake_report(args.members))
    histogram = LatencyCounts()
    for i in range(1000):
        histogram.observe(0.0001 * (i % 40))
    view = NodeView(Address("10.0.0.1", 5701), "me", fake, fake_traffic(), lambda: 120, 2.0)
    registry = node_registry(view, histogram)
    server = ManagementServer(Address("127.0.0.1", 0), Endpoints(view, registry, None), 2.0)
    try:
        body = scrape(server.address)()
        report("scrape_bytes", len(body))
        report("scrape_lines", body.count(b"\n"))
        collect = timed(lambda: generate_latest(registry), count)
        report("collect_ms_median", statistics.median(collect))
        scrapes = timed(scrape(server.address), count)
        report("scrape_ms_median", statistics.median(scrapes))
        report("scrape_ms_p99", statistics.quantiles(scrapes, n=100)[98])
    finally:
        server.stop()
        fake.stop()

    with actors.start_member("bench", port=0, http_address="127.0.0.1:0") as node:
        assert node.http_address is not None
        real = timed(scrape(node.http_address), count // 4)
        report("real_one_member_scrape_ms_median", statistics.median(real))
    report.check_targets()


if __name__ == "__main__":
    main()
