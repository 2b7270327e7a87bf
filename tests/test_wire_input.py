"""Bad bytes on a member's port close that one connection, are logged, and harm nothing else."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import msgspec
import pytest
from cluster_helpers import ClusterHarness, RawLink

from messages.address import Address
from messages.events import MemberUnreachable
from messages.member import Member
from messages.membership.protocol import ClientUpdate, Join, Watch
from messages.wire.framing import encode_frame
from messages.wire.handshake import HANDSHAKE_FRAME_BYTES, HelloRefused

MAX_FRAME_BYTES = 1024

BadInput = Callable[[RawLink, str], None]


def garbage(link: RawLink, cluster_name: str) -> None:
    """A frame of bytes that are not MessagePack (0xc1 is never used in MessagePack)."""
    link.send_bytes(encode_frame(b"\xc1\xc1garbage\xff\x00"))


def oversized_frame_header(link: RawLink, cluster_name: str) -> None:
    """After a valid handshake, a header announcing 2000 bytes to a member that accepts 1024."""
    link.hello(cluster_name)
    link.send_bytes((2000).to_bytes(4, "big") + b"x" * 100)


def oversized_first_frame_header(link: RawLink, cluster_name: str) -> None:
    """Before any Hello, a header announcing more than a handshake needs, and no payload: the
    member can only close on the header alone, so it never buffered the announced bytes."""
    link.send_bytes((HANDSHAKE_FRAME_BYTES + 1).to_bytes(4, "big"))


def truncated_frame(link: RawLink, cluster_name: str) -> None:
    """Half a frame, then the end of the stream (write side shut)."""
    link.send_bytes((100).to_bytes(4, "big") + b"y" * 40)
    link.sock.shutdown(socket.SHUT_WR)  # the member reads the end of the stream mid-frame


def unknown_tag(link: RawLink, cluster_name: str) -> None:
    """After a valid handshake, a well-formed frame whose message tag no wire type has."""
    link.hello(cluster_name)
    link.send_bytes(encode_frame(msgspec.msgpack.encode({"type": "Bogus", "sequence": 1})))


def empty_run(link: RawLink, cluster_name: str) -> None:
    """After a valid handshake, a run of envelopes with none in it."""
    link.hello(cluster_name)
    link.send_bytes(encode_frame(msgspec.msgpack.encode({"type": "Envelopes", "envelopes": []})))


def join_without_hello(link: RawLink, cluster_name: str) -> None:
    """A valid Join as the first frame: nothing is read before a Hello."""
    link.send(Join(member=Member.create(Address("127.0.0.1", 1))))
    assert isinstance(link.receive(), HelloRefused)


CASES: dict[str, tuple[BadInput, str]] = {
    "garbage": (garbage, "malformed payload"),
    "oversized": (oversized_frame_header, "announces 2000 bytes, more than the maximum of 1024"),
    "oversized-before-hello": (
        oversized_first_frame_header,
        f"announces {HANDSHAKE_FRAME_BYTES + 1} bytes, more than the maximum of "
        f"{HANDSHAKE_FRAME_BYTES} for a first frame",
    ),
    "truncated": (truncated_frame, "stream ended inside a frame"),
    "unknown-tag": (unknown_tag, "invalid message"),
    "empty-run": (empty_run, "invalid message"),
    "join-without-hello": (join_without_hello, "expected Hello as first frame, got Join"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_closes_only_that_connection(
    harness: ClusterHarness, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    caplog.set_level(logging.INFO, logger="actors.transport")
    send_bad_input, reason = CASES[case]
    target = harness.start(max_frame_bytes=MAX_FRAME_BYTES)
    peer = harness.start()
    harness.wait_all_up()
    with RawLink(target.address) as watcher, RawLink(target.address) as attacker:
        watcher.hello(harness.cluster_name)  # a healthy link on the same port

        send_bad_input(attacker, harness.cluster_name)

        assert attacker.read_to_eof(), f"the member kept the connection open after {case}"
        logged = [
            record.getMessage()
            for record in caplog.records
            if record.name.startswith("actors.transport.") and record.levelno >= logging.WARNING
        ]
        assert any(reason in text for text in logged), logged
        watcher.send(Watch())
        update = watcher.receive(ClientUpdate)
        assert {m.uuid for m in update.state.members} == {target.uuid, peer.uuid}

    newcomer = harness.start(seeds=[target.address])
    harness.wait_all_up({target.uuid, peer.uuid, newcomer.uuid})
    for node in harness.nodes:
        assert not any(isinstance(e, MemberUnreachable) for e in node.events()), node
    assert target.is_running
    harness.check_invariants()
