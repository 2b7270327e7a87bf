"""Streaming through one link: the transport (actor and I/O thread) vs raw loopback TCP, same run;
and one node's I/O thread to another's, plain TCP vs TLS, same run.

Usage: ``python benchmarks/link.py [--quick] [--tls-only]``. Prints ``name: value`` lines:
messages per second through a node's connection path (a ``TransportActor`` told ``SendTo`` one
message at a time; it encodes each and queues the frame to the ``IoLoop``, whose thread sends
whatever is queued in one ``send``) next to a raw socket that sends each frame with its own
``sendall`` and one that sends batches of 64, all with the same wire messages, codec and receiver.

Then link throughput with and without TLS (mutual, TLS 1.3, certificates made by ``trustme`` in a
temporary directory): the same transport sends to a second node's ``IoLoop``, in a process of its
own as a peer's is, that decodes every frame and counts it in its own thread (both ends' TLS
layers are on the path), for small messages
(heartbeats, messages per second) and large ones (64 KiB application envelopes, MB per second);
``tls_vs_plain_*_ratio`` is the TLS figure over the plain one (the target: at least 0.5).
In the same run, the ceiling: 256 KiB writes over a bare loopback socket pair, plain and wrapped
by ``ssl`` (a thread reads; no frames, no I/O loop), with the cipher suite negotiated.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import msgspec
import pykka
import trustme
from report import Report

from actors.transport.actor import TransportActor, bind_listener
from actors.transport.loop import IoLoop
from actors.transport.tls import TlsConfig
from messages.address import Address
from messages.local.commands import Listen
from messages.membership.effects import Inbound, SendTo
from messages.membership.protocol import Heartbeat
from messages.messaging.envelope import Envelope, Tell
from messages.messaging.versions import EMPTY_DIGEST
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import Hello, Role

HELLO = Hello(
    cluster_name="bench", protocol_version=PROTOCOL_VERSION, uuid="sender", role=Role.MEMBER
)
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


class Counter:
    """The receiving loop's ``deliver_to``: counts what arrives, in that loop's own thread (an
    actor's mailbox would be the bottleneck, not the link)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.done = threading.Event()

    def tell(self, message: Inbound) -> None:
        self.left -= 1
        if not self.left:
            self.done.set()


def receive_in_process(pipe: Connection, count: int, tls: TlsConfig | None) -> None:
    """The receiving node, in a process of its own (as a peer is): sends its port, then the
    moment it has decoded ``count`` messages."""
    loop = IoLoop(WIRE_CODEC, Settings(cluster_name="bench"), name="bench-in", tls=tls)
    counter = Counter(count)
    inbound = bind_listener(Address("127.0.0.1", 0))
    loop.listen(
        inbound,
        accept_frame=b"",
        uuid="receiver",
        check_hello=lambda hello: None,
        deliver_to=cast(pykka.ActorRef[Any], counter),
        manager=Sink.start(),
    )
    pipe.send(inbound.getsockname()[1])
    if counter.done.wait(120):
        pipe.send(time.perf_counter())
    pykka.ActorRegistry.stop_all()
    loop.stop()


def loop_to_loop(wire: Sequence[Any], tls: tuple[TlsConfig, TlsConfig] | None) -> float:
    """Seconds to send ``wire`` from a transport to another node's ``IoLoop``, in another
    process (TLS: the receiver's config, the sender's), until it has decoded every message."""
    receiver_tls, sender_tls = (None, None) if tls is None else tls
    ours, theirs = multiprocessing.Pipe()
    spawn = multiprocessing.get_context("spawn")
    receiver = spawn.Process(target=receive_in_process, args=(theirs, len(wire), receiver_tls))
    receiver.start()
    try:
        peer = Address("127.0.0.1", ours.recv())
        sending = IoLoop(
            WIRE_CODEC, Settings(cluster_name="bench"), name="bench-out", tls=sender_tls
        )
        LOOPS.append(sending)
        listener = bind_listener(Address("127.0.0.1", 0))
        own = Address("127.0.0.1", listener.getsockname()[1])
        transport = TransportActor.start(
            loop=sending,
            listener=listener,
            hello=msgspec.structs.replace(HELLO, address=own),
            check_hello=lambda hello: None,
            codec=WIRE_CODEC,
        )
        transport.tell(Listen(deliver_to=Sink.start()))
        start = time.perf_counter()  # the same clock in both processes (CLOCK_MONOTONIC)
        for message in wire:
            transport.tell(SendTo(peer, message))
        if not ours.poll(120):
            raise TimeoutError("the receiving node did not get every message")
        end: float = ours.recv()
        return end - start
    finally:
        receiver.join(10)


def blobs(count: int, size: int) -> list[Envelope]:
    payload = msgspec.msgpack.encode(b"\xa5" * size)
    body = Tell(to="sink", kind="Blob", payload=msgspec.Raw(payload))
    return [Envelope(sequence=n + 1, version=EMPTY_DIGEST, body=body) for n in range(count)]


def tls_configs(directory: Path) -> tuple[TlsConfig, TlsConfig]:
    """A receiver's and a sender's mutual-TLS config, each with a certificate of one new CA."""
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    configs = []
    for name in ("receiver", "sender"):
        issued = ca.issue_cert("127.0.0.1")
        cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        configs.append(TlsConfig(ca_file=str(ca_file), cert_file=str(cert), key_file=str(key)))
    return configs[0], configs[1]


def socket_stream(
    total: int, contexts: tuple[ssl.SSLContext, ssl.SSLContext] | None
) -> tuple[float, str]:
    """Seconds to stream ``total`` bytes in 256 KiB writes over a blocking loopback socket pair
    (TLS: wrapped by ``ssl`` with the receiver's and the sender's context), read by a thread;
    no frames, no actors: the ceiling of what Python's sockets and ``ssl`` move here. Also the
    cipher suite TLS negotiated ("none" without TLS)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        raw_out = socket.create_connection(server.getsockname())
        raw_in, _ = server.accept()
    if contexts is None:
        sender, receiver = raw_out, raw_in
    else:
        accepted: list[socket.socket] = []
        side = threading.Thread(
            target=lambda: accepted.append(contexts[0].wrap_socket(raw_in, server_side=True))
        )
        side.start()
        sender = contexts[1].wrap_socket(raw_out)
        side.join()
        receiver = accepted[0]

    def drain() -> None:
        buffer = memoryview(bytearray(1 << 18))
        left = total
        while left > 0:
            got = receiver.recv_into(buffer)
            if not got:
                break
            left -= got

    chunk = b"\xa5" * (1 << 18)
    with sender, receiver:
        reader = threading.Thread(target=drain)
        start = time.perf_counter()
        reader.start()
        for _ in range(total // len(chunk)):
            sender.sendall(chunk)
        reader.join()
        seconds = time.perf_counter() - start
        cipher = sender.cipher() if isinstance(sender, ssl.SSLSocket) else None
        return seconds, "none" if cipher is None else f"{cipher[1]} {cipher[0]}"


def plain_vs_tls(report: Report, count: int, blob_count: int, repeats: int) -> None:
    """Loop-to-loop throughput, plain and TLS interleaved, with their ratios."""
    blob_size = 64 * 1024
    small, large = messages(count), blobs(blob_count, blob_size)
    with tempfile.TemporaryDirectory() as directory:
        configs = tls_configs(Path(directory))
        runs: dict[str, list[float]] = {"plain": [], "tls": [], "plain_mb": [], "tls_mb": []}
        runs |= {"socket_mb": [], "ssl_mb": []}
        receiver, sender = configs
        contexts = (receiver.server_context(), sender.client_context())
        total = blob_count * blob_size
        for _ in range(repeats):
            runs["socket_mb"].append(total / 1e6 / socket_stream(total, None)[0])
            seconds, cipher = socket_stream(total, contexts)
            runs["ssl_mb"].append(total / 1e6 / seconds)
            for name, tls in (("plain", None), ("tls", configs)):
                runs[name].append(count / loop_to_loop(small, tls))
                megabytes = blob_count * blob_size / 1e6
                runs[f"{name}_mb"].append(megabytes / loop_to_loop(large, tls))
                pykka.ActorRegistry.stop_all()
                while LOOPS:
                    LOOPS.pop().stop()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    report("tls_cipher", cipher)
    report("link_plain_small_msgs_per_s", medians["plain"])
    report("link_tls_small_msgs_per_s", medians["tls"])
    report("tls_vs_plain_small_ratio", medians["tls"] / medians["plain"])
    report("link_plain_64k_mb_per_s", medians["plain_mb"])
    report("link_tls_64k_mb_per_s", medians["tls_mb"])
    report("tls_vs_plain_64k_ratio", medians["tls_mb"] / medians["plain_mb"])
    report("baseline_raw_socket_mb_per_s", medians["socket_mb"])
    report("baseline_raw_ssl_mb_per_s", medians["ssl_mb"])
    report("raw_ssl_vs_socket_ratio", medians["ssl_mb"] / medians["socket_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tls-only", action="store_true", help="plain vs TLS only")
    args = parser.parse_args()
    count, repeats = (20_000, 3) if args.quick else (100_000, 7)
    report = Report({}, {"tls_vs_plain_small_ratio": 0.5, "tls_vs_plain_64k_ratio": 0.5})
    report.environment()
    report("messages_per_run", count)
    if args.tls_only:
        plain_vs_tls(report, count, count // 50, repeats)
        report.check_targets()
        return
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
    plain_vs_tls(report, count, count // 50, repeats)
    report.check_targets()


if __name__ == "__main__":
    try:
        main()
    finally:  # an actor that a busy machine let start after a repetition's stop_all
        pykka.ActorRegistry.stop_all()
