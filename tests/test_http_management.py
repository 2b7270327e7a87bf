"""Management over HTTP, over real HTTP on 127.0.0.1: the member table, health, operator
commands guarded by a bearer token, Prometheus metrics, and bad input of every kind."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, WatchedNode, partition, poll_until, saw
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from support.actor_hook import ActorThreadHook
from support.processes import run_cli, start_cli

from actors.cli.main import EXIT_OK
from actors.cli.render import member_rows
from actors.management.endpoints import Endpoints
from actors.management.latency import LatencyCounts
from actors.management.metrics import node_registry
from actors.management.server import MAX_BODY_BYTES, ManagementServer
from actors.management.view import NodeView
from actors.transport.traffic import Traffic
from messages.address import Address
from messages.events import MemberLeft, MemberRemoved
from messages.local.commands import GetClusterState
from messages.member import MemberStatus
from messages.membership.effects import (
    DownMember,
    Inbound,
    LeaveMember,
    LeaveTimedOut,
    MembershipChanged,
    SendTo,
    SetTimer,
    TerminationKind,
)
from messages.membership.node import NodeState
from messages.membership.protocol import Gossip
from messages.membership.publication import Publication
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.handshake import Identity, Role

TOKEN = "management-token"
HTTP = {"http_address": "127.0.0.1:0", "http_token": TOKEN}


class Answer:
    """One HTTP response: status, headers, body (and the body as JSON, when it is)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json", self.headers
        return json.loads(self.body)


def call(
    address: Address,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    connection = http.client.HTTPConnection(address.host, address.port, timeout=STEP_TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def put(address: Address, target: Address | str, body: Any, token: str | None = TOKEN) -> Answer:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return call(address, "PUT", f"/cluster/members/{target}", data, headers)


def raw(address: Address, data: bytes) -> bytes:
    """What the server answers to ``data`` sent as is (it closes after one answer)."""
    with socket.create_connection((address.host, address.port), timeout=STEP_TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def http_of(node: WatchedNode) -> Address:
    address = node.node.http_address
    assert address is not None
    return address


def ended(node: WatchedNode) -> TerminationKind:
    """How ``node`` ended, once it has stopped (it must, within ``STEP_TIMEOUT``)."""
    assert node.node.wait_stopped(STEP_TIMEOUT), f"{node} still runs"
    termination = node.node.termination
    assert termination is not None
    return termination.kind


def samples(address: Address) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``GET /metrics``, parsed by Prometheus's own parser, by (name, labels)."""
    answer = call(address, "GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterHarness]:
    """Three converged members; the first serves HTTP with a token, the second without one."""
    with ClusterHarness() as harness:
        harness.start(**HTTP)
        harness.start(http_address="127.0.0.1:0")
        harness.start()
        harness.wait_all_up()
        harness.wait_converged()
        yield harness


def test_http_is_off_by_default_and_port_0_picks_a_free_port(cluster: ClusterHarness) -> None:
    served, untokened, quiet = cluster.nodes
    assert quiet.node.http_address is None
    assert Settings().http_address is None
    for node in (served, untokened):
        assert http_of(node).host == "127.0.0.1"
        assert http_of(node).port != 0


def test_members_are_the_rows_of_membership_members_json(cluster: ClusterHarness) -> None:
    node = cluster.nodes[0]
    answer = call(http_of(node), "GET", "/cluster/members")
    assert answer.status == 200
    table = answer.json
    state = node.node.membership.ask(GetClusterState(), timeout=STEP_TIMEOUT)
    assert table["members"] == member_rows(state)
    assert len(table["members"]) == 3
    assert table["leader"] == str(state.leader)
    assert table["self"] == str(node.address)
    assert table["self_uuid"] == node.uuid
    assert table["converged"] is True
    assert table["unreachable"] == []
    assert all(row["reachable"] for row in table["members"])


def test_alive_and_ready_on_a_converged_member(cluster: ClusterHarness) -> None:
    address = http_of(cluster.nodes[0])
    alive = call(address, "GET", "/health/alive")
    assert (alive.status, alive.json) == (200, {"alive": True})
    ready = call(address, "GET", "/health/ready")
    assert (ready.status, ready.json) == (200, {"ready": True, "status": "UP"})


def test_metrics_parse_with_the_prometheus_parser(cluster: ClusterHarness) -> None:
    node = cluster.nodes[0]
    others = {n.uuid: str(n.address) for n in cluster.nodes[1:]}
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def phis_of_all_others() -> bool:
        # A detector reports from its first heartbeat answer on, which may follow convergence.
        nonlocal values
        values = samples(http_of(node))
        reported = {
            dict(labels)["uuid"] for name, labels in values if name == "membership_detector_phi"
        }
        return reported == set(others)

    poll_until(phis_of_all_others, "a detector's phi for each other member")

    assert values[("membership_members", (("status", "UP"),))] == 3
    for status in ("JOINING", "LEAVING", "EXITING", "DOWN"):
        assert values[("membership_members", (("status", status),))] == 0
    assert values[("membership_unreachable_members", ())] == 0
    assert values[("membership_converged", ())] == 1
    assert values[("membership_links", ())] >= 2
    assert values[("membership_local_health", ())] == 0
    for direction in ("received", "sent"):
        gossip = values[(f"membership_messages_{direction}_total", (("type", "GossipStatus"),))]
        size = values[(f"membership_{direction}_bytes_total", (("type", "GossipStatus"),))]
        assert gossip > 0
        assert size > gossip * 4  # a frame header each, and more
    phis = {
        dict(labels)["uuid"]: (dict(labels)["member"], value)
        for (name, labels), value in values.items()
        if name == "membership_detector_phi"
    }
    assert phis.keys() == others.keys(), "a detector did not report"
    for uuid, (member, phi) in phis.items():
        assert others[uuid] == member
        assert 0 <= phi < Settings().phi_threshold
    assert values[("membership_event_fanout_seconds_count", ())] >= 1
    assert values[("membership_event_fanout_seconds_bucket", (("le", "+Inf"),))] >= 1
    assert values[("membership_event_fanout_seconds_sum", ())] > 0


def test_each_node_has_its_own_registry_not_the_global_one(cluster: ClusterHarness) -> None:
    first, second, _ = cluster.nodes
    assert first.node.metrics is not second.node.metrics
    assert REGISTRY.get_sample_value("membership_unreachable_members") is None
    assert first.node.metrics.get_sample_value("membership_unreachable_members") == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nothing", 404, "not-found"),
        ("GET", "/cluster/members/extra/", 405, "method-not-allowed"),
        ("POST", "/metrics", 405, "method-not-allowed"),
        ("DELETE", "/cluster/members", 405, "method-not-allowed"),
        ("PUT", "/health/ready", 405, "method-not-allowed"),
        ("BREW", "/metrics", 501, "not-implemented"),
    ],
)
def test_unknown_paths_and_wrong_methods(
    cluster: ClusterHarness, method: str, path: str, status: int, error: str
) -> None:
    answer = call(http_of(cluster.nodes[0]), method, path)
    assert answer.status == status
    assert answer.json["error"] == error
    if status == 405:
        assert answer.headers["Allow"] in ("GET", "PUT")


def test_the_token_is_the_shared_secret_unless_one_is_given() -> None:
    secret = "a shared secret of 32 bytes....."
    with ClusterHarness(secret=secret) as harness:
        address = http_of(harness.start(http_address="127.0.0.1:0"))
        answer = put(address, "127.0.0.1:1", {"operation": "down"}, secret)
        assert (answer.status, answer.json["error"]) == (400, "unknown-address")  # let in
        answer = put(address, "127.0.0.1:1", {"operation": "down"}, TOKEN)
        assert (answer.status, answer.json["error"]) == (403, "forbidden")
        own = http_of(harness.start(**HTTP))
        answer = put(own, "127.0.0.1:1", {"operation": "down"}, secret)
        assert (answer.status, answer.json["error"]) == (403, "forbidden")


def test_put_without_a_configured_token_is_refused(cluster: ClusterHarness) -> None:
    _, untokened, quiet = cluster.nodes
    answer = put(http_of(untokened), quiet.address, {"operation": "down"})
    assert (answer.status, answer.json["error"]) == (403, "no-token-configured")
    assert quiet.is_running


@pytest.mark.parametrize(
    ("token", "status", "error"),
    [(None, 401, "unauthorized"), ("wrong", 403, "forbidden"), (TOKEN + "x", 403, "forbidden")],
)
def test_put_with_a_missing_or_wrong_token_is_refused(
    cluster: ClusterHarness, token: str | None, status: int, error: str
) -> None:
    served, _, quiet = cluster.nodes
    answer = put(http_of(served), quiet.address, {"operation": "down"}, token)
    assert (answer.status, answer.json["error"]) == (status, error)
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert quiet.is_running


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "bad-json"),
        (b"\xff\xfe", "bad-json"),
        (b"[" * 3000, "bad-json"),
        (b"", "bad-json"),
        (b'"leave"', "unknown-operation"),
        (b'{"operation": "explode"}', "unknown-operation"),
        (b'{"operation": ["leave"]}', "unknown-operation"),
        (b"{}", "unknown-operation"),
    ],
)
def test_a_bad_body_is_a_400_that_changes_nothing(
    cluster: ClusterHarness, body: bytes, error: str
) -> None:
    served, _, quiet = cluster.nodes
    answer = put(http_of(served), quiet.address, body)
    assert (answer.status, answer.json["error"]) == (400, error)
    assert answer.json["detail"]
    assert quiet.is_running


@pytest.mark.parametrize(
    ("target", "error"),
    [("127.0.0.1:1", "unknown-address"), ("127.0.0.1:99999", "bad-address"), ("", "bad-address")],
)
def test_an_unknown_or_bad_address_is_a_400(
    cluster: ClusterHarness, target: str, error: str
) -> None:
    answer = put(http_of(cluster.nodes[0]), target, {"operation": "down"})
    assert (answer.status, answer.json["error"]) == (400, error)


def test_bodies_are_bounded_and_need_a_length(cluster: ClusterHarness) -> None:
    address = http_of(cluster.nodes[0])
    target = f"/cluster/members/{cluster.nodes[2].address}"
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    too_large = raw(
        address,
        f"PUT {target} HTTP/1.1\r\n{auth}Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode(),
    )
    assert too_large.startswith(b"HTTP/1.0 413 ")
    no_length = raw(address, f"PUT {target} HTTP/1.1\r\n{auth}\r\n".encode())
    assert no_length.startswith(b"HTTP/1.0 411 ")
    chunked = raw(
        address,
        f"PUT {target} HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(),
    )
    assert chunked.startswith(b"HTTP/1.0 411 ")
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(101))
    too_many = raw(address, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n")
    assert too_many.startswith(b"HTTP/1.0 431 ")
    error = json.loads(too_many.split(b"\r\n\r\n", 1)[1])["error"]
    assert error == "request-header-fields-too-large"
    assert raw(address, b"\x00\x01 / HTTP/x.y\r\n\r\n")  # answered (as HTTP/0.9), no crash
    assert cluster.nodes[2].is_running
    assert call(address, "GET", "/health/alive").status == 200


def test_a_client_that_never_finishes_its_request_cannot_hold_the_server() -> None:
    with ClusterHarness(http_timeout=0.5) as harness:
        address = http_of(harness.start(**HTTP))
        with socket.create_connection((address.host, address.port)) as stalled:
            stalled.sendall(b"GET /health/al")  # and then nothing more
            # The one serving thread is freed at the deadline: the next request is answered.
            assert call(address, "GET", "/nothing").status == 404
            stalled.settimeout(STEP_TIMEOUT)
            assert stalled.recv(1024) == b""  # closed by the server, unanswered


def test_a_stuck_membership_actor_gives_503_not_a_hang() -> None:
    with ClusterHarness(http_timeout=0.5) as harness:
        node = harness.start(**HTTP)
        address = http_of(node)
        release = threading.Event()
        node.node.membership.tell(ActorThreadHook(lambda: release.wait(STEP_TIMEOUT)))
        try:
            for path in ("/health/alive", "/health/ready", "/cluster/members", "/metrics"):
                answer = call(address, "GET", path)
                assert (answer.status, answer.json["error"]) == (503, "unavailable"), path
            answer = put(address, node.address, {"operation": "leave"})
            assert (answer.status, answer.json["error"]) == (503, "unavailable")
        finally:
            release.set()
        poll_until(lambda: call(address, "GET", "/health/alive").status == 200, "alive again")


def test_a_stopped_actor_gives_503() -> None:
    actor = pykka.ThreadingActor.start()
    actor.stop()
    view = NodeView(Address("127.0.0.1", 1), "me", actor, Traffic(), lambda: 0, 0.5)
    endpoints = Endpoints(view, node_registry(view, LatencyCounts()), None)
    server = ManagementServer(Address("127.0.0.1", 0), endpoints, 0.5)
    try:
        for path in ("/health/alive", "/metrics"):
            answer = call(server.address, "GET", path)
            assert (answer.status, answer.json["error"]) == (503, "unavailable")
    finally:
        server.stop()


def test_ready_is_503_while_the_view_has_not_converged() -> None:
    with ClusterHarness(down_after=60.0) as harness:
        for _ in range(5):
            harness.start(**HTTP)
        harness.wait_all_up()
        harness.wait_converged()
        majority, _ = partition(harness)
        address = http_of(majority[0])

        def not_ready() -> bool:
            return call(address, "GET", "/health/ready").status == 503

        poll_until(not_ready, "ready turns 503")

        def both_unreachable() -> bool:
            return samples(address)[("membership_unreachable_members", ())] == 2

        poll_until(both_unreachable, "the minority unreachable")
        assert not_ready()
        answer = call(address, "GET", "/health/ready")
        assert answer.json["error"] == "not-ready"
        assert "converged" in answer.json["detail"]
        assert call(address, "GET", "/health/alive").status == 200
        table = call(address, "GET", "/cluster/members").json
        assert len(table["unreachable"]) == 2
        assert table["converged"] is False


def test_put_leave_makes_another_member_leave_gracefully() -> None:
    with ClusterHarness() as harness:
        operator, other, leaver = harness.start(**HTTP), harness.start(), harness.start()
        harness.wait_all_up()
        answer = put(http_of(operator), leaver.address, {"operation": "leave"})
        assert answer.status == 200
        assert answer.json["uuid"] == leaver.uuid
        assert answer.json["operation"] == "leave"
        assert answer.json["status"] in ("LEAVING", "EXITING", "REMOVED")
        assert ended(leaver) is TerminationKind.LEFT
        for node in (operator, other):
            node.wait(saw(MemberRemoved, leaver.uuid), what="the leaver removed")
        rows = call(http_of(operator), "GET", "/cluster/members").json["members"]
        assert leaver.uuid not in {row["uuid"] for row in rows}


def test_put_down_removes_a_member_and_a_member_may_leave_by_its_own_endpoint() -> None:
    with ClusterHarness() as harness:
        operator, downed, other = harness.start(**HTTP), harness.start(), harness.start()
        harness.wait_all_up()
        answer = put(http_of(operator), downed.address, {"operation": "down"})
        assert (answer.status, answer.json["status"]) == (200, "DOWN")
        assert ended(downed) is TerminationKind.REMOVED
        other.wait(saw(MemberRemoved, downed.uuid), what="the downed member removed")

        answer = put(http_of(operator), operator.address, {"operation": "leave"})
        assert answer.status == 200
        assert ended(operator) is TerminationKind.LEFT


def test_settings_check_the_http_fields_and_never_show_the_token() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings(http_address="127.0.0.1:http")
    with pytest.raises(ValueError, match="http_token"):
        Settings(http_token="")
    with pytest.raises(ValueError, match="http_timeout must be positive"):
        Settings(http_timeout=0)
    settings = Settings(http_address="127.0.0.1", http_token=b"s3cret")
    assert "s3cret" not in repr(settings)


def test_a_member_process_serves_http_and_leaves_when_put_asks(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # the line end an editor adds is not part of it
    member = start_cli(
        *("member", "--cluster", "http-cli", "--bind", "127.0.0.1:0"),
        *("--http", "127.0.0.1:0", "--http-token-file", str(token_file)),
    )
    with member:
        line = member.stderr.line(member.stderr.wait_for(r"management over HTTP at http://"))
        found = re.search(r"http://(\S+)", line)
        assert found is not None
        address = Address.parse(found.group(1))
        poll_until(lambda: call(address, "GET", "/health/ready").status == 200, "ready")
        table = call(address, "GET", "/cluster/members").json
        answer = put(address, table["self"], {"operation": "leave"})
        assert (answer.status, answer.json["operation"]) == (200, "leave")
        assert member.wait() == EXIT_OK


@pytest.mark.parametrize(
    "flags",
    [("--http", "127.0.0.1:port"), ("--http", "127.0.0.1:0", "--http-token-file", "/no/such")],
)
def test_bad_http_flags_exit_2(flags: tuple[str, ...]) -> None:
    done = run_cli("member", "--cluster", "x", "--bind", "127.0.0.1:0", *flags)
    assert done.returncode == 2


# -- the operator's commands in the pure core ------------------------------------------------


def member_of(size: int, index: int) -> NodeState:
    """Member ``index`` of a converged cluster of ``size``, running."""
    state = converged_cluster(size)
    published, _ = Publication().publish(state)
    node = NodeState.create(state.members[index], Settings.lan(), seed=1)
    return dataclasses.replace(node, published=published, running=True, last_step=0.0)


def status_at(node: NodeState, address: Address) -> MemberStatus | None:
    member = node.state.member_at(address)
    return None if member is None else member.status


def test_leave_member_marks_another_member_leaving_and_tells_the_cluster() -> None:
    node = member_of(3, 0)
    target = node.state.members[1]
    after, effects = step(node, LeaveMember(target.address), 1.0)
    assert status_at(after, target.address) is MemberStatus.LEAVING
    changes = [e for e in effects if isinstance(e, MembershipChanged)]
    assert [type(event) for change in changes for event in change.events] == [MemberLeft]
    assert any(isinstance(e, SendTo) and isinstance(e.message, Gossip) for e in effects)
    assert not after.leaving  # this member itself stays


def test_down_member_marks_it_down_and_nothing_changes_for_an_unknown_address() -> None:
    node = member_of(3, 0)
    target = node.state.members[2]
    after, _ = step(node, DownMember(target.address), 1.0)
    assert status_at(after, target.address) is MemberStatus.DOWN
    for command in (DownMember(Address("10.9.9.9", 1)), LeaveMember(Address("10.9.9.9", 1))):
        assert step(node, command, 1.0)[0].state is node.state
    again, _ = step(after, DownMember(target.address), 1.0)
    assert again.state.version == after.state.version


def test_a_member_another_marked_leaving_leaves_as_if_asked_and_a_self_leave_is_leave() -> None:
    leader, target = member_of(3, 0), member_of(3, 1)
    marked, _ = step(leader, LeaveMember(target.me.address), 1.0)
    gossip = Gossip(from_uuid=leader.uuid, to_uuid=target.uuid, state=marked.state)
    from_leader = Inbound(gossip, 1, identity=Identity(leader.uuid, Role.MEMBER, leader.me.address))
    after, effects = step(target, from_leader, 1.0)
    assert after.leaving
    assert SetTimer(Settings.lan().leave_timeout, LeaveTimedOut()) in effects

    itself, effects = step(target, LeaveMember(target.me.address), 1.0)
    assert itself.leaving
    assert status_at(itself, target.me.address) is MemberStatus.LEAVING
