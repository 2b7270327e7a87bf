"""Seeds from DNS: a real DNS server (dnslib's) on 127.0.0.1 whose records change while members
join; missing names, silent servers and SRV records; the join rules in the pure core."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from cluster_helpers import WatchedNode, all_up, saw, up_uuids
from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer
from support.processes import start_cli

from actors import DnsSeeds, JoinTimeoutError, Node, Settings, start_member
from actors.cli.demo import free_port
from actors.cli.main import EXIT_OK, main
from actors.discovery import LookupFailure, SeedLookupError
from actors.dns_lookup import resolve_seeds
from messages.address import Address
from messages.events import MemberRemoved, MemberUp
from messages.member import Member
from messages.membership.effects import (
    JoinAttempt,
    JoinCluster,
    Joined,
    JoinFailed,
    SeedsFound,
    SendTo,
)
from messages.membership.node import NodeState
from messages.membership.protocol import Join
from messages.membership.step import step

CLUSTER = "dns-test"
FAST = Settings.fast_test(
    cluster_name=CLUSTER, seed_dns_interval=0.1, seed_dns_timeout=0.5, join_timeout=15.0
)

Records = Callable[[str, str], list[str] | None]
"""(query name, query type) -> zone-file lines of the answer, or None for NXDOMAIN."""


class Zone(BaseResolver):  # type: ignore[misc]
    """Answers from ``records`` (which the test may swap while members look names up), and
    counts the queries per (name, type). Additional-section lines start with ``+``."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self.queries: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count(self, name: str, qtype: str = "A") -> int:
        with self._lock:
            return self.queries.get((name, qtype), 0)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name, qtype = str(request.q.qname), QTYPE[request.q.qtype]
        with self._lock:
            self.queries[(name, qtype)] = self.queries.get((name, qtype), 0) + 1
        reply = request.reply()
        lines = self.records(name, qtype)
        if lines is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for line in lines:
            if line.startswith("+"):
                reply.add_ar(*RR.fromZone(line[1:]))
            else:
                reply.add_answer(*RR.fromZone(line))
        return reply


@pytest.fixture
def dns_server() -> Iterator[Callable[[Records], tuple[Zone, Address]]]:
    """``dns_server(records)`` starts a DNS server on a free UDP port of 127.0.0.1."""
    servers: list[DNSServer] = []

    def start(records: Records) -> tuple[Zone, Address]:
        zone = Zone(records)
        server = DNSServer(zone, address="127.0.0.1", port=0, logger=DNSLogger(logf=_quiet))
        server.start_thread()
        servers.append(server)
        return zone, Address("127.0.0.1", server.server.server_address[1])

    yield start
    for server in servers:
        server.stop()
        server.server.server_close()


def _quiet(_text: str) -> None:
    """dnslib's logger prints every query; these tests read the counts instead."""


def a_record(name: str, *hosts: str) -> list[str]:
    return [f"{name} 5 A {host}" for host in hosts]


def answer_a(table: dict[str, list[str]]) -> Records:
    """A-only answers from ``table`` (name -> hosts); other types of a known name: no record."""

    def records(name: str, qtype: str) -> list[str] | None:
        if name not in table:
            return None
        return a_record(name, *table[name]) if qtype == "A" else []

    return records


@pytest.fixture
def seed() -> Iterator[WatchedNode]:
    """A member on a free port of 127.0.0.1, its events recorded from its start."""
    with start_member(port=0, settings=FAST) as node:
        yield WatchedNode.of_node(node)


def joined_through(seed: WatchedNode, joiner: Node) -> None:
    """Wait until the seed and the joiner both see each other up."""
    WatchedNode.of_node(joiner).wait(all_up({seed.uuid, joiner.uuid}))
    seed.wait(saw(MemberUp, joiner.uuid))


# -- lookups -----------------------------------------------------------------------------------


def test_a_and_aaaa_records_at_the_given_port(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    def records(name: str, qtype: str) -> list[str] | None:
        if name != "both.test.":
            return None
        return {"A": a_record(name, "127.0.0.1", "127.0.0.3"), "AAAA": [f"{name} 5 AAAA ::1"]}.get(
            qtype, []
        )

    _, server = dns_server(records)
    found = resolve_seeds(DnsSeeds.parse("both.test:7000", (server,)), timeout=2.0)
    assert found == (
        Address("127.0.0.1", 7000),
        Address("127.0.0.3", 7000),
        Address("::1", 7000),
    )


def test_srv_records_give_hosts_and_ports_with_or_without_glue(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    srv = "_membership._tcp.svc.test."

    def records(name: str, qtype: str) -> list[str] | None:
        table = {
            (srv, "SRV"): [
                f"{srv} 5 SRV 0 0 7001 m1.svc.test.",
                f"{srv} 5 SRV 0 0 7002 m2.svc.test.",
                f"{srv} 5 SRV 0 0 7003 gone.svc.test.",  # no address (yet): skipped
                "+m1.svc.test. 5 A 127.0.0.1",  # glue for m1; m2 is looked up
            ],
            ("m2.svc.test.", "A"): a_record("m2.svc.test.", "127.0.0.2"),
        }
        if name in ("gone.svc.test.", "nothing.test.", "_membership._tcp.nothing.test."):
            return None
        return table.get((name, qtype), [])

    zone, server = dns_server(records)
    found = resolve_seeds(DnsSeeds("svc.test", nameservers=(server,)), timeout=2.0)
    assert found == (Address("127.0.0.1", 7001), Address("127.0.0.2", 7002))
    assert zone.count("m1.svc.test.") == 0  # the glue was used
    # An SRV name given as such is looked up as it is.
    named = resolve_seeds(DnsSeeds(srv, nameservers=(server,)), timeout=2.0)
    assert named == found


def test_a_bare_name_without_srv_records_falls_back_to_a_records_at_5701(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    zone, server = dns_server(answer_a({"plain.test.": ["127.0.0.1"]}))
    found = resolve_seeds(DnsSeeds("plain.test", nameservers=(server,)), timeout=2.0)
    assert found == (Address("127.0.0.1", 5701),)
    assert zone.count("_membership._tcp.plain.test.", "SRV") == 1


def test_a_missing_name_and_a_name_without_records_are_told_apart(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    _, server = dns_server(answer_a({"empty.test.": []}))
    with pytest.raises(SeedLookupError) as missing:
        resolve_seeds(DnsSeeds.parse("missing.test:7000", (server,)), timeout=2.0)
    assert missing.value.failure is LookupFailure.NO_SUCH_NAME
    with pytest.raises(SeedLookupError) as empty:
        resolve_seeds(DnsSeeds.parse("empty.test:7000", (server,)), timeout=2.0)
    assert empty.value.failure is LookupFailure.NO_RECORDS


def test_a_silent_server_times_out_on_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never answers
        silent.bind(("127.0.0.1", 0))
        server = Address("127.0.0.1", silent.getsockname()[1])
        started = time.monotonic()
        with pytest.raises(SeedLookupError) as error:
            resolve_seeds(DnsSeeds.parse("any.test:7000", (server,)), timeout=0.5)
        assert error.value.failure is LookupFailure.TIMEOUT
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("text", ["", ":7000", "name:http", "name:70000", "two words", "a..b"])
def test_a_bad_seed_name_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="DNS seed"):
        DnsSeeds.parse(text)


def test_the_cli_refuses_a_bad_seed_name_with_exit_code_2() -> None:
    args = ["member", "--cluster", CLUSTER, "--bind", "127.0.0.1:0"]
    with pytest.raises(SystemExit) as bad_name:
        main([*args, "--seed-dns", "name:http"])
    assert bad_name.value.code == 2
    with pytest.raises(SystemExit) as server_alone:
        main([*args, "--seed-dns-server", "127.0.0.1"])
    assert server_alone.value.code == 2


# -- members joining through DNS ---------------------------------------------------------------


def test_records_that_change_while_joining_are_picked_up(
    dns_server: Callable[[Records], tuple[Zone, Address]], seed: WatchedNode
) -> None:
    """The first answers name only a dead address; once the joiner has dialled it, the name
    points at the live seed, and the joiner joins through that."""
    port = seed.address.port
    dialled = threading.Event()
    with socket.create_server(("127.0.0.2", port)) as dead:  # accepts, then closes: no member
        threading.Thread(target=_accept_once, args=(dead, dialled), daemon=True).start()

        def records(name: str, qtype: str) -> list[str] | None:
            host = "127.0.0.1" if dialled.is_set() else "127.0.0.2"
            return answer_a({"seeds.test.": [host]})(name, qtype)

        zone, server = dns_server(records)
        with start_member(
            port=0, settings=FAST, seed_dns=DnsSeeds.parse(f"seeds.test:{port}", (server,))
        ) as joiner:
            assert dialled.is_set()
            assert zone.count("seeds.test.") >= 2  # the dead answer, then the live one
            joined_through(seed, joiner)


def _accept_once(listener: socket.socket, dialled: threading.Event) -> None:
    connection, _ = listener.accept()
    connection.close()
    dialled.set()


def test_a_name_that_appears_while_joining_is_used_and_the_failures_logged(
    dns_server: Callable[[Records], tuple[Zone, Address]],
    seed: WatchedNode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="actors.discovery")
    zone: Zone | None = None

    def records(name: str, qtype: str) -> list[str] | None:
        assert zone is not None
        if zone.count("late.test.") <= 3:  # NXDOMAIN for the first lookups
            return None
        return answer_a({"late.test.": ["127.0.0.1"]})(name, qtype)

    zone, server = dns_server(records)
    spec = DnsSeeds.parse(f"late.test:{seed.address.port}", (server,))
    with start_member(port=0, settings=FAST, seed_dns=spec) as joiner:
        joined_through(seed, joiner)
    warnings = [r for r in caplog.records if r.name == "actors.discovery"]
    assert warnings
    assert all(r.levelno == logging.WARNING for r in warnings)


def test_a_name_that_never_resolves_ends_in_join_timeout_not_a_cluster_of_one(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    zone, server = dns_server(answer_a({}))
    started = time.monotonic()
    with pytest.raises(JoinTimeoutError):
        start_member(
            port=0,
            settings=FAST.replace(join_timeout=1.0),
            seed_dns=DnsSeeds.parse("nowhere.test:7000", (server,)),
        )
    assert time.monotonic() - started >= 1.0
    assert zone.count("nowhere.test.") >= 2  # looked up again while joining


def test_a_silent_dns_server_ends_in_join_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        server = Address("127.0.0.1", silent.getsockname()[1])
        with pytest.raises(JoinTimeoutError):
            start_member(
                port=0,
                settings=FAST.replace(join_timeout=1.0, seed_dns_timeout=0.3),
                seed_dns=DnsSeeds.parse("any.test:7000", (server,)),
            )


def test_members_join_through_srv_records(
    dns_server: Callable[[Records], tuple[Zone, Address]], seed: WatchedNode
) -> None:
    srv = "_membership._tcp.cluster.test."
    dead_port = free_port()

    def records(name: str, qtype: str) -> list[str] | None:
        if name == srv and qtype == "SRV":
            return [
                f"{srv} 5 SRV 0 0 {dead_port} m0.cluster.test.",
                f"{srv} 5 SRV 0 0 {seed.address.port} m0.cluster.test.",
                "+m0.cluster.test. 5 A 127.0.0.1",
            ]
        return None

    _, server = dns_server(records)
    spec = DnsSeeds("cluster.test", nameservers=(server,))
    with start_member(port=0, settings=FAST, seed_dns=spec) as joiner:
        joined_through(seed, joiner)


def test_members_started_together_that_find_each_other_in_dns_form_one_cluster(
    dns_server: Callable[[Records], tuple[Zone, Address]],
) -> None:
    """As pods of one StatefulSet whose records are all published: the first of the found seeds
    (in address order) forms the cluster once it has tried each other one twice; the others
    join it."""
    ports = [free_port() for _ in range(3)]
    srv = "_membership._tcp.together.test."

    def records(name: str, qtype: str) -> list[str] | None:
        if name == srv and qtype == "SRV":
            lines = [f"{srv} 5 SRV 0 0 {port} m.together.test." for port in ports]
            return [*lines, "+m.together.test. 5 A 127.0.0.1"]
        return None

    _, server = dns_server(records)
    spec = DnsSeeds("together.test", nameservers=(server,))
    nodes: list[Node] = []
    failures: list[BaseException] = []

    def start(port: int) -> None:
        try:
            nodes.append(start_member(port=port, settings=FAST, seed_dns=spec))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=start, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(FAST.join_timeout + FAST.ask_timeout)
    try:
        assert failures == []
        uuids = {node.uuid for node in nodes}
        for node in nodes:
            WatchedNode.of_node(node).wait(all_up(uuids))
        formed = [n for n in nodes if n.cluster.get_members()[0].uuid == n.uuid]
        assert [n.address for n in formed] == [Address("127.0.0.1", min(ports))]
    finally:
        for node in nodes:
            node.stop()


def test_the_cli_member_joins_through_dns_and_leaves_on_sigterm(
    dns_server: Callable[[Records], tuple[Zone, Address]], seed: WatchedNode
) -> None:
    _, server = dns_server(answer_a({"cli.test.": ["127.0.0.1"]}))
    with start_cli(
        *("member", "--cluster", CLUSTER, "--bind", f"127.0.0.1:{free_port()}"),
        *("--seed-dns", f"cli.test:{seed.address.port}", "--seed-dns-server", str(server)),
        *("--gossip-interval", "0.2", "--heartbeat-interval", "0.2"),
    ) as member:
        events = seed.wait(lambda events: len(up_uuids(events)) == 2, timeout=20.0)
        (joiner,) = up_uuids(events) - {seed.uuid}
        member.signal(signal.SIGTERM)
        assert member.wait(20.0) == EXIT_OK
        seed.wait(saw(MemberRemoved, joiner))


# -- the join rules, in the pure core ----------------------------------------------------------

ME = Member.create(Address("10.0.0.5", 5701), member_uuid="me")
OTHER = Address("10.0.0.1", 5701)
SETTINGS = Settings.lan()
DISCOVERY = "DNS name seeds.test"


def joining(now: float = 0.0) -> NodeState:
    node, effects = step(
        NodeState.create(ME, SETTINGS, seed=1), JoinCluster((), discovery=DISCOVERY), now
    )
    assert not [e for e in effects if isinstance(e, Joined | SendTo)]  # waits, forms nothing
    return node


def test_a_discovering_member_waits_for_seeds_and_tries_those_found() -> None:
    node = joining()
    node, effects = step(node, JoinAttempt(0), 0.3)
    assert not [e for e in effects if isinstance(e, Joined | SendTo)]
    node, _ = step(node, SeedsFound((OTHER,)), 0.4)
    node, effects = step(node, JoinAttempt(0), 0.5)
    assert SendTo(OTHER, Join(member=ME)) in effects


def test_the_first_of_the_found_seeds_forms_the_cluster_after_trying_the_others_twice() -> None:
    node = joining()
    node, _ = step(node, SeedsFound((ME.address, Address("10.0.0.9", 5701))), 0.1)
    tries = 0
    for attempt in range(10):
        node, effects = step(node, JoinAttempt(attempt), 0.2 + attempt)
        if Joined(formed=True) in effects:
            break
        tries += len([e for e in effects if isinstance(e, SendTo)])
    assert node.joined
    assert tries == 2  # 10.0.0.5 sorts before 10.0.0.9: this member is first


def test_a_discovering_member_that_finds_nothing_fails_at_the_deadline() -> None:
    node = joining()
    _, effects = step(node, JoinAttempt(0), SETTINGS.join_timeout + 0.1)
    failed = [e for e in effects if isinstance(e, JoinFailed)]
    assert len(failed) == 1
    assert not failed[0].refused
    assert DISCOVERY in failed[0].reason


def test_found_seeds_after_joining_change_nothing() -> None:
    node, _ = step(NodeState.create(ME, SETTINGS, seed=1), JoinCluster(()), 0.0)
    assert node.joined
    after, effects = step(node, SeedsFound((OTHER,)), 1.0)
    assert effects == ()
    assert after.join is None
