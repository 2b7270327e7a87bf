"""TLS links: mutual TLS between members, clients over TLS, and every way a TLS handshake fails.

Certificates come from ``trustme``, made afresh in each test's ``tmp_path``; nothing is checked in.
A failed handshake must end in ``JoinRefusedError`` naming TLS on the dialling side, never a hang.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pykka
import pytest
import trustme

from actors.cli.main import main
from actors.client import start_client
from actors.listeners.cluster_service import ClusterService
from actors.node import Node, start_member
from actors.supervisor import JoinRefusedError
from actors.transport.loop import IoLoop
from actors.transport.tls import TlsConfig, TlsLayer
from messages import register
from messages.address import Address
from messages.local.links import LinkClosed
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import Hello, HelloRefused, Role

FAST = Settings.fast_test(cluster_name="tls", join_timeout=10.0)


@register
class Blob(msgspec.Struct, frozen=True):
    data: bytes


class Echo(pykka.ThreadingActor):
    """Answers every ask with what it got: a large blob crosses the link both ways."""

    def on_receive(self, message: Any) -> Any:
        return message


def tls_files(tmp_path: Path, ca: trustme.CA, name: str, *, cert: bool = True) -> TlsConfig:
    """A ``TlsConfig`` with a certificate for 127.0.0.1 signed by ``ca`` (none: CA only)."""
    ca_file = tmp_path / f"{name}-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    if not cert:
        return TlsConfig(ca_file=str(ca_file))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / f"{name}-cert.pem", tmp_path / f"{name}-key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    issued.private_key_pem.write_to_path(str(key_file))
    return TlsConfig(ca_file=str(ca_file), cert_file=str(cert_file), key_file=str(key_file))


def wait_size(cluster: ClusterService, size: int, timeout: float = 20.0) -> bool:
    """Whether ``cluster`` holds ``size`` members within ``timeout`` (its listeners wake us)."""
    reached = threading.Event()

    def check(_member: object) -> None:
        if cluster.size() == size:
            reached.set()

    registration = cluster.add_listener(check, check, fire_for_existing=True)
    try:
        return reached.wait(timeout) or cluster.size() == size
    finally:
        cluster.remove_listener(registration)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def seed(tmp_path: Path, ca: trustme.CA) -> Iterator[Node]:
    with start_member(port=0, settings=FAST, tls=tls_files(tmp_path, ca, "seed")) as node:
        yield node


def test_members_join_and_exchange_messages_over_tls(
    tmp_path: Path, ca: trustme.CA, seed: Node
) -> None:
    seed.register("echo", Echo.start())
    seeds = [str(seed.address)]
    with (
        start_member(port=0, seeds=seeds, settings=FAST, tls=tls_files(tmp_path, ca, "b")) as b,
        start_member(port=0, seeds=seeds, settings=FAST, tls=tls_files(tmp_path, ca, "c")) as c,
    ):
        for node in (seed, b, c):
            assert wait_size(node.cluster, 3)
        large = Blob(random.Random(17).randbytes(6 * 1024 * 1024))  # 6 MiB: ~400 TLS records
        assert b.remote("echo", member=seed.uuid).ask(large, timeout=20) == large
        assert c.remote("echo", member=seed.uuid).ask(Blob(b"small"), timeout=20) == Blob(b"small")


def test_a_client_over_tls_sees_the_members(tmp_path: Path, ca: trustme.CA, seed: Node) -> None:
    with start_client(
        members=[str(seed.address)], settings=FAST, tls=tls_files(tmp_path, ca, "client")
    ) as client:
        assert wait_size(client.cluster, 1)
        assert client.cluster.members[0].uuid == seed.uuid


def test_a_member_with_a_certificate_of_another_ca_is_refused(
    tmp_path: Path, seed: Node, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = tls_files(tmp_path, trustme.CA(), "stranger")
    with caplog.at_level(logging.ERROR), pytest.raises(JoinRefusedError, match="TLS"):
        start_member(port=0, seeds=[str(seed.address)], settings=FAST, tls=stranger)
    assert sum("TLS" in record.getMessage() for record in caplog.records) >= 1
    assert seed.cluster.size() == 1


def test_a_certificate_of_another_ca_is_refused_by_the_member_that_checks_it(
    tmp_path: Path, ca: trustme.CA, seed: Node
) -> None:
    """The dialler trusts the seed's CA, but its own certificate is signed by another CA: the
    seed refuses it, and the dialler hears it (a TLS alert) as a refusal naming TLS."""
    own = tls_files(tmp_path, trustme.CA(), "own")
    trusting = TlsConfig(
        ca_file=tls_files(tmp_path, ca, "seedca", cert=False).ca_file,
        cert_file=own.cert_file,
        key_file=own.key_file,
    )
    with pytest.raises(JoinRefusedError, match="TLS"):
        start_member(port=0, seeds=[str(seed.address)], settings=FAST, tls=trusting)


def test_a_client_without_a_certificate_is_refused_by_mutual_tls(
    tmp_path: Path, ca: trustme.CA, seed: Node
) -> None:
    with pytest.raises(JoinRefusedError, match="TLS"):
        start_client(
            members=[str(seed.address)],
            settings=FAST,
            tls=tls_files(tmp_path, ca, "nocert", cert=False),
        )


def test_a_plain_peer_is_refused_by_a_tls_member(seed: Node) -> None:
    with pytest.raises(JoinRefusedError, match="TLS"):
        start_member(port=0, seeds=[str(seed.address)], settings=FAST)
    with pytest.raises(JoinRefusedError, match="TLS"):
        start_client(members=[str(seed.address)], settings=FAST)


def test_a_plain_hello_to_a_tls_member_gets_a_plain_refusal(seed: Node) -> None:
    """What a plain peer reads: one ``HelloRefused`` frame, then the close; nothing of it is
    acted on by the member."""
    hello = Hello("tls", PROTOCOL_VERSION, "plain-peer", Role.MEMBER)
    with socket.create_connection((seed.address.host, seed.address.port), timeout=10) as sock:
        sock.sendall(encode_frame(WIRE_CODEC.encode(hello)))
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    (payload,) = FrameDecoder().feed(received)
    assert isinstance(WIRE_CODEC.decode(payload), HelloRefused)
    assert seed.cluster.size() == 1


def test_a_tls_member_is_refused_by_a_plain_member(tmp_path: Path, ca: trustme.CA) -> None:
    with start_member(port=0, settings=FAST) as plain:
        with pytest.raises(JoinRefusedError, match="TLS"):
            start_member(
                port=0, seeds=[str(plain.address)], settings=FAST, tls=tls_files(tmp_path, ca, "t")
            )
        assert plain.cluster.size() == 1


def test_a_member_may_let_clients_in_without_a_certificate(tmp_path: Path, ca: trustme.CA) -> None:
    """With ``require_client_cert=False``, a peer without a certificate may watch as a client
    (not join as a member: the next test)."""
    own = tls_files(tmp_path, ca, "open")
    open_door = TlsConfig(own.ca_file, own.cert_file, own.key_file, require_client_cert=False)
    no_cert = tls_files(tmp_path, ca, "anon", cert=False)
    with (
        start_member(port=0, settings=FAST, tls=open_door) as member,
        start_client(members=[str(member.address)], settings=FAST, tls=no_cert) as client,
    ):
        assert wait_size(client.cluster, 1)


def test_hostnames_are_checked_when_asked(tmp_path: Path, ca: trustme.CA, seed: Node) -> None:
    checked = tls_files(tmp_path, ca, "checked")
    checking = TlsConfig(checked.ca_file, checked.cert_file, checked.key_file, check_hostname=True)
    with start_member(port=0, seeds=[str(seed.address)], settings=FAST, tls=checking) as node:
        assert wait_size(node.cluster, 2)


def test_bad_tls_files_are_a_value_error_at_once(tmp_path: Path, ca: trustme.CA) -> None:
    good = tls_files(tmp_path, ca, "good")
    other = tls_files(tmp_path, ca, "other")
    with pytest.raises(ValueError, match="does not exist"):
        TlsConfig(ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="does not exist"):
        TlsConfig(good.ca_file, str(tmp_path / "missing.pem"), good.key_file)
    with pytest.raises(ValueError, match="does not match"):
        TlsConfig(good.ca_file, good.cert_file, other.key_file)
    with pytest.raises(ValueError, match="needs its key"):
        TlsConfig(good.ca_file, good.cert_file)
    with pytest.raises(ValueError, match="needs a certificate"):
        start_member(port=0, settings=FAST, tls=TlsConfig(good.ca_file))


def test_the_cli_takes_tls_flags(
    tmp_path: Path, ca: trustme.CA, seed: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    own = tls_files(tmp_path, ca, "cli")
    assert own.cert_file is not None
    assert own.key_file is not None
    flags = ["--tls-ca", own.ca_file, "--tls-cert", own.cert_file, "--tls-key", own.key_file]
    connect = ["--cluster", "tls", "--connect", str(seed.address), "--timeout", "10"]
    assert main(["members", *connect, "--json", *flags]) == 0
    assert seed.uuid in capsys.readouterr().out
    assert main(["members", *connect]) == 1  # plain: refused, named TLS in the log


@pytest.mark.parametrize(
    "flags",
    [
        ["--tls-ca", "missing.pem", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        ["--tls-cert", "c.pem", "--tls-key", "k.pem"],
        ["--tls-ca", "{ca}"],  # a member without a certificate
    ],
)
def test_bad_tls_flags_exit_2(tmp_path: Path, ca: trustme.CA, flags: list[str]) -> None:
    ca_file = tls_files(tmp_path, ca, "flags", cert=False).ca_file
    argv = ["member", "--cluster", "tls", "--bind", "127.0.0.1:0"]
    with pytest.raises(SystemExit) as exit_:
        main(argv + [flag.format(ca=ca_file) for flag in flags])
    assert exit_.value.code == 2


def test_a_member_role_without_a_certificate_is_refused(tmp_path: Path, ca: trustme.CA) -> None:
    """A listener that lets peers in without a certificate lets them in as clients only: a
    ``Hello`` as a member from such a peer is refused, and the member stays alone."""
    own = tls_files(tmp_path, ca, "door")
    open_door = TlsConfig(own.ca_file, own.cert_file, own.key_file, require_client_cert=False)
    context = ssl.create_default_context(cafile=own.ca_file)
    hello = Hello("tls", PROTOCOL_VERSION, "no-cert", Role.MEMBER, Address("127.0.0.1", 1))
    with start_member(port=0, settings=FAST, tls=open_door) as member:
        address = (member.address.host, member.address.port)
        with (
            socket.create_connection(address, timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(encode_frame(WIRE_CODEC.encode(hello)))
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
        (payload,) = FrameDecoder().feed(received)
        refusal = WIRE_CODEC.decode(payload)
        assert isinstance(refusal, HelloRefused)
        assert "certificate" in refusal.reason
        assert member.cluster.size() == 1


def test_a_certificate_for_another_host_is_refused_when_hostnames_are_checked(
    tmp_path: Path, ca: trustme.CA
) -> None:
    issued = ca.issue_cert("member.example")  # no 127.0.0.1 in it
    cert, key, ca_file = (tmp_path / name for name in ("h.pem", "h-key.pem", "h-ca.pem"))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    named = TlsConfig(str(ca_file), str(cert), str(key))
    checking = TlsConfig(str(ca_file), str(cert), str(key), check_hostname=True)
    with start_member(port=0, settings=FAST, tls=named) as member:
        with pytest.raises(JoinRefusedError, match="TLS"):
            start_member(port=0, seeds=[str(member.address)], settings=FAST, tls=checking)
        with start_member(port=0, seeds=[str(member.address)], settings=FAST, tls=named) as other:
            assert wait_size(other.cluster, 2)


def test_a_dialled_link_whose_tls_handshake_stalls_closes_after_handshake_timeout(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """A peer that accepts the connection and never answers the ClientHello: the link closes
    after ``handshake_timeout``, and says why."""
    settings = Settings(cluster_name="tls", handshake_timeout=0.3)
    loop = IoLoop(WIRE_CODEC, settings, name="tls-io", tls=tls_files(tmp_path, ca, "stall"))
    closed: queue.SimpleQueue[LinkClosed] = queue.SimpleQueue()
    manager = Collector.start(closed)
    try:
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            hello = encode_frame(WIRE_CODEC.encode(Hello("tls", 1, "me", Role.CLIENT)))
            link = loop.dial(Address("127.0.0.1", port), hello, deliver_to=manager, manager=manager)
            silent, _ = server.accept()
            with silent:
                event = closed.get(timeout=10)
        assert event.link == link
        assert "no TLS handshake" in event.reason
    finally:
        manager.stop()
        loop.stop()


class Collector(pykka.ThreadingActor):
    """Puts every ``LinkClosed`` it is told on a queue."""

    def __init__(self, closed: queue.SimpleQueue[LinkClosed]) -> None:
        super().__init__()
        self._closed = closed

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LinkClosed):
            self._closed.put(message)
        return None


def test_a_layer_hands_over_every_record_a_read_brings(tmp_path: Path, ca: trustme.CA) -> None:
    """Two layers on a socket pair, the reader's buffer far smaller than what one ``recv``
    brings: every byte comes out, in order, and none waits inside TLS unseen."""
    payload = random.Random(5).randbytes(300_000)
    pieces = [payload[start : start + 65536] for start in range(0, len(payload), 65536)]
    assert layer_pair_carries(tmp_path, ca, pieces) == payload


def test_batches_of_any_size_arrive_in_order(tmp_path: Path, ca: trustme.CA) -> None:
    """Batches under a record, of exactly one, and of several with a partial last record
    arrive as their bytes in order."""
    sizes = [10, 20_000, 5, 16_384, 3, 70_000, 1, 16_383, 9_000]
    batches = [random.Random(size).randbytes(size) for size in sizes]
    assert layer_pair_carries(tmp_path, ca, batches) == b"".join(batches)


def layer_pair_carries(tmp_path: Path, ca: trustme.CA, batches: list[bytes]) -> bytes:
    """What a server layer receives when a client layer sends ``batches`` (each taken whole
    by one ``send``), both on a socket pair with small buffers."""
    config = tls_files(tmp_path, ca, "pair")
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)
        client = TlsLayer(
            config.client_context(), None, left, "server", wake=lambda: None, buffer=small()
        )
        server = TlsLayer(
            config.server_context(),
            None,
            right,
            "client",
            wake=lambda: None,
            buffer=small(),
            plain_refusal=b"",
        )
        expected = sum(len(batch) for batch in batches)
        waiting, received = list(batches), bytearray()
        for _ in range(10_000):  # each turn moves bytes; no waiting on time
            if waiting and client.send(waiting[0]):
                waiting.pop(0)
            elif not waiting:
                client.send(b"")  # what is still unsent
            with contextlib.suppress(BlockingIOError):
                received += server.recv(1 << 20)
            with contextlib.suppress(BlockingIOError):
                client.recv(1 << 20)  # the server's handshake flights
            if len(received) == expected:
                break
        return bytes(received)


def small() -> memoryview:
    return memoryview(bytearray(4096))


def test_tls_combines_with_the_shared_secret(tmp_path: Path, ca: trustme.CA) -> None:
    """Both on: members and a client join; the right certificate with the wrong secret is
    refused naming the authentication, not TLS."""
    secret, wrong = b"a shared secret long enough to keep", b"another secret, just as long as it"
    both = FAST.replace(secret=secret)
    with start_member(port=0, settings=both, tls=tls_files(tmp_path, ca, "s1")) as seed:
        seeds = [str(seed.address)]
        with (
            start_member(port=0, seeds=seeds, settings=both, tls=tls_files(tmp_path, ca, "s2")),
            start_client(members=seeds, settings=both, tls=tls_files(tmp_path, ca, "s3")) as client,
        ):
            assert wait_size(client.cluster, 2)
        with pytest.raises(JoinRefusedError, match="authentication") as refused:
            start_member(
                port=0,
                seeds=seeds,
                settings=FAST.replace(secret=wrong),
                tls=tls_files(tmp_path, ca, "s4"),
            )
        assert "TLS" not in str(refused.value)
