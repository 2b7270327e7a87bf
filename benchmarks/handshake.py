"""Connect and handshake, without and with the shared secret, same run (issue 17's target).

Usage: ``python benchmarks/handshake.py [--quick]``. Prints ``name: value`` lines: the median and
90th percentile time from ``IoLoop.dial`` to the dialler's actor holding the member's
``HelloAccepted`` (TCP connect on 127.0.0.1, the handshake, both I/O threads and the actor
hand-off), for a member and a dialler without a secret and for both with one (the
challenge-response: one more round trip and four HMAC-SHA256), interleaved one by one so that
noise hits both alike; and what the secret adds, checked against the target (<= 5 ms).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import threading
import time
from typing import Any

import pykka
from report import Report

from actors.transport.actor import TransportActor, bind_listener
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.local.commands import Listen
from messages.membership.effects import Inbound
from messages.settings import PROTOCOL_VERSION, Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.handshake import Hello, HelloAccepted, Role, check_hello

SECRET = b"a benchmark secret of 32 bytes!!"
TARGETS = {"handshake_added_ms": 5.0}


class Accepted(pykka.ThreadingActor):
    """The dialler's actor: sets ``event`` when the member's ``HelloAccepted`` arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Inbound) and isinstance(message.message, HelloAccepted):
            self.event.set()
        return None


class Pair:
    """A member's transport (accepting) and a dialler's I/O thread, with the same settings."""

    def __init__(self, settings: Settings) -> None:
        self.member_loop = IoLoop(WIRE_CODEC, settings, name="bench-member-io")
        self.dial_loop = IoLoop(WIRE_CODEC, settings, name="bench-dial-io")
        listener = bind_listener(Address("127.0.0.1", 0))
        self.address = Address("127.0.0.1", listener.getsockname()[1])
        self.transport = TransportActor.start(
            loop=self.member_loop,
            listener=listener,
            hello=Hello(
                settings.cluster_name, PROTOCOL_VERSION, "member", Role.MEMBER, self.address
            ),
            check_hello=functools.partial(check_hello, settings),
            codec=WIRE_CODEC,
        )
        self.sink = pykka.ThreadingActor.start()
        self.transport.tell(Listen(deliver_to=self.sink))
        self.hello = Hello(settings.cluster_name, PROTOCOL_VERSION, "dialler", Role.CLIENT)
        self.waiter = Accepted.start()
        self.accepted: threading.Event = self.waiter.proxy().event.get()

    def handshake_ms(self) -> float:
        """One dial, to the dialler's actor holding ``HelloAccepted``; the link then closes."""
        self.accepted.clear()
        start = time.perf_counter()
        link = self.dial_loop.dial(
            self.address, b"", hello=self.hello, deliver_to=self.waiter, manager=self.waiter
        )
        if not self.accepted.wait(10):
            raise TimeoutError("no HelloAccepted within 10 s")
        elapsed = (time.perf_counter() - start) * 1000
        self.dial_loop.close(link, "measured")
        return elapsed

    def stop(self) -> None:
        for ref in (self.transport, self.sink, self.waiter):
            ref.stop()
        for loop in (self.member_loop, self.dial_loop):
            loop.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 200 if args.quick else 2000
    report = Report(TARGETS)
    report.environment()
    report("handshakes_per_mode", count)
    plain = Pair(Settings(cluster_name="bench"))
    secure = Pair(Settings(cluster_name="bench", secret=SECRET))
    times: dict[str, list[float]] = {"plain": [], "secret": []}
    try:
        for pair in (plain, secure):  # warm up: imports, first connections
            for _ in range(20):
                pair.handshake_ms()
        for _ in range(count):
            times["plain"].append(plain.handshake_ms())
            times["secret"].append(secure.handshake_ms())
    finally:
        plain.stop()
        secure.stop()
    for mode, samples in times.items():
        report(f"handshake_{mode}_median_ms", statistics.median(samples))
        report(f"handshake_{mode}_p90_ms", statistics.quantiles(samples, n=10)[-1])
    added = statistics.median(times["secret"]) - statistics.median(times["plain"])
    report("handshake_added_ms", added)
    report.check_targets()


if __name__ == "__main__":
    main()
