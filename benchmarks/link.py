"""Streaming through one link: the transport (actor and I/O thread) vs raw loopback TCP, same run.

Usage: ``python benchmarks/link.py [--quick]``. Prints ``name: value`` lines: messages per second
through a node's connection path (a ``TransportActor`` told ``SendTo`` one message at a time; it
encodes each and queues the frame to the ``IoLoop``, whose thread sends whatever is queued in one
``send``) next to a raw socket that sends each frame with its own ``sendall`` and one that sends
batches of 64, all with the same wire messages, codec and receiver.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pykka
from report import Report

from actors.transport.actor import TransportActor, bind_listener
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.local.commands import Listen
from messages.membership.effects import SendTo
from messages.membership.protocol import Heartbeat
from messages.settings import Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import Hello, Role

HELLO = Hello(cluster_name="bench", protocol_version=1, uuid="sender", role=Role.MEMBER)
LOOPS: list[IoLoop] = []  # stopped after each repetition


class Sink(pykka.ThreadingActor):
    """Delivery target of the transport; nothing comes back in this benchmark."""


def receive(server: socket.socket, count: int, done: threading.Event) -> None:
    """Accept one connection and decode frames until ``count`` heartbeats have arrived."""
    peer, _ = server.accept()
    decoder = FrameDecoder()
    seen = 0
    with peer:
        while seen < count:
            data = peer.recv(1 << 18)
            if not data:
                break
            for payload in decoder.feed(data):
                if isinstance(WIRE_CODEC.decode(payload), Heartbeat):
                    seen += 1
    done.set()


def timed(count: int, send_all: Callable[[int], None]) -> float:
    """Messages per second for ``send_all(port)`` to deliver ``count`` heartbeats to a receiver."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        done = threading.Event()
        threading.Thread(target=receive, args=(server, count, done), daemon=True).start()
        start = time.perf_counter()
        send_all(server.getsockname()[1])
        if not done.wait(60):
            raise TimeoutError("the receiver did not get every message")
        return count / (time.perf_counter() - start)


def messages(count: int) -> list[Heartbeat]:
    return [Heartbeat(from_uuid="sender", to_uuid="receiver", sequence=n) for n in range(count)]


def through_transport(count: int) -> Callable[[int], None]:
    def send_all(port: int) -> None:
        loop = IoLoop(WIRE_CODEC, Settings(cluster_name="bench"), name="bench-io")
        LOOPS.append(loop)
        listener = bind_listener(Address("127.0.0.1", 0))
        own_address = Address("127.0.0.1", listener.getsockname()[1])
        transport = TransportActor.start(
            loop=loop,
            listener=listener,
            hello=msgspec.structs.replace(HELLO, address=own_address),
            check_hello=lambda hello: None,
            codec=WIRE_CODEC,
        )
        transport.tell(Listen(deliver_to=Sink.start()))
        peer = Address("127.0.0.1", port)
        for message in messages(count):
            transport.tell(SendTo(peer, message))

    return send_all


def raw(count: int, batch: int) -> Callable[[int], None]:
    def send_all(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            frames = [encode_frame(WIRE_CODEC.encode(m)) for m in [HELLO, *messages(count)]]
            for start in range(0, len(frames), batch):
                sock.sendall(b"".join(frames[start : start + batch]))

    return send_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, repeats = (20_000, 3) if args.quick else (100_000, 7)
    report = Report({})
    report.environment()
    report("messages_per_run", count)
    runs: dict[str, list[float]] = {"actor": [], "raw_batch_1": [], "raw_batch_64": []}
    for _ in range(repeats):  # interleaved, so noise hits all three alike
        runs["actor"].append(timed(count, through_transport(count)))
        runs["raw_batch_1"].append(timed(count, raw(count, 1)))
        runs["raw_batch_64"].append(timed(count, raw(count, 64)))
        pykka.ActorRegistry.stop_all()
        while LOOPS:
            LOOPS.pop().stop()
    medians: dict[str, Any] = {name: statistics.median(values) for name, values in runs.items()}
    report("link_transport_msgs_per_s", medians["actor"])
    report("baseline_raw_tcp_batch_1_msgs_per_s", medians["raw_batch_1"])
    report("baseline_raw_tcp_batch_64_msgs_per_s", medians["raw_batch_64"])
    report("transport_vs_raw_unbatched_ratio", medians["actor"] / medians["raw_batch_1"])
    report("transport_vs_raw_batch_64_ratio", medians["actor"] / medians["raw_batch_64"])


if __name__ == "__main__":
    main()
