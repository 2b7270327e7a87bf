"""ConnectionActor over a real loopback socket: order, batching, close."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pykka
import pytest

from actors.connection import ConnectionActor
from actors.node import WIRE_CODEC
from messages import Address
from messages.framing import FrameDecoder
from messages.links import LinkClosed, Send
from messages.protocol import Heartbeat, Hello, Role

TIMEOUT = 10.0
HELLO = Hello(cluster_name="c", protocol_version=1, uuid="me", role=Role.MEMBER)


class Sink(pykka.ThreadingActor):
    """Stands in for the transport and the membership actor: keeps what it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()
        self.reasons: list[str] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LinkClosed):
            self.reasons.append(message.reason)
            self.closed.set()
        return None


class RecordingSocket:
    """A socket stand-in for the writer thread: records each sendall."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.calls.append(data)


def dial(port: int, sink: pykka.ActorRef[Any]) -> pykka.ActorRef[Any]:
    return ConnectionActor.start(
        codec=WIRE_CODEC,
        deliver_to=sink,
        manager=sink,
        max_frame_bytes=1 << 20,
        io_timeout=2.0,
        unacked_timeout=5.0,
        local_uuid="me",
        peer=Address("127.0.0.1", port),
        hello=HELLO,
    )


def read_messages(sock: socket.socket, count: int) -> list[Any]:
    decoder = FrameDecoder()
    messages: list[Any] = []
    while len(messages) < count:
        data = sock.recv(65536)
        assert data, f"EOF after {len(messages)} of {count} messages"
        messages.extend(WIRE_CODEC.decode(payload) for payload in decoder.feed(data))
    return messages


@pytest.fixture
def listener() -> Any:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(TIMEOUT)
        yield server


def test_sends_arrive_complete_and_in_order_after_the_hello(listener: socket.socket) -> None:
    sink = Sink.start()
    link = dial(listener.getsockname()[1], sink)
    for sequence in range(2000):
        link.tell(Send(Heartbeat(from_uuid="me", to_uuid="you", sequence=sequence)))
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(TIMEOUT)
        messages = read_messages(peer, 2001)
        assert messages[0] == HELLO
        assert [m.sequence for m in messages[1:]] == list(range(2000))
        link.stop()
        assert peer.recv(1) == b""  # closed on stop
    assert sink.proxy().closed.get().wait(TIMEOUT)


def test_frames_queued_together_leave_in_one_sendall() -> None:
    link = ConnectionActor(
        codec=WIRE_CODEC,
        deliver_to=Sink.start(),
        manager=Sink.start(),
        max_frame_bytes=1 << 20,
        io_timeout=2.0,
        unacked_timeout=5.0,
        local_uuid="me",
        peer=Address("127.0.0.1", 1),
    )
    frames = [bytes([n]) * 10 for n in range(3)]
    for frame in frames:
        link._outbox.put(frame)
    link._outbox.put(None)
    recorder = RecordingSocket()
    link._write_loop(recorder)  # type: ignore[arg-type]
    assert recorder.calls == [b"".join(frames)]


def test_a_peer_that_is_not_listening_closes_the_link_with_the_reason() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink.start()
    link = dial(port, sink)
    link.tell(Send(Heartbeat(from_uuid="me", to_uuid="you", sequence=1)))
    assert sink.proxy().closed.get().wait(TIMEOUT)
    [reason] = sink.proxy().reasons.get()
    assert reason.startswith(f"cannot connect to 127.0.0.1:{port}")
    link.stop()
