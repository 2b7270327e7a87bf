"""Remote messaging between two member processes, beside raw TCP, thespian and xoscar, same run.

Usage: ``python benchmarks/remote.py [--quick] [--xoscar-python PATH]``. Starts a member process
(this script with ``--serve``) with an echo actor and a counting actor, joins it from this process,
and measures:

- sequential ``ask`` round trips per second, p50 and p99 (steady state, after a warm-up), to an
  echo ``ThreadingActor`` (a thread of its own: the main figure, the one the targets judge);
- the same to an echo ``DispatchedActor`` hosted on the serving node's I/O thread (``hosted_ask``:
  the answering side's equivalent of xoscar, whose actors run on its pool's event loop);
- pipelined one-way ``tell`` messages per second with a 64-byte payload (until the counter has
  them all; the sender waits at the flow gate when it is full, as by default);
- the floor in the same run: a raw loopback TCP ping-pong with 4-byte length-prefixed frames
  between this process and another one (this script with ``--tcp-echo``), a thespian
  ``multiprocTCPBase`` ask when thespian is installed, and a sequential cross-process actor call
  in xoscar (``benchmarks/xoscar_echo.py``, run by ``--xoscar-python``, an interpreter with
  xoscar: by default this one if it imports xoscar, else the column is reported not installed);
- ``MemberUnreachable`` events seen during the whole run (heartbeats must keep flowing).

Each repetition measures every column once; the figures printed are medians over repetitions.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import select
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pykka
from report import Report

import actors
from actors.cli.demo import free_port
from actors.dispatch.actor import DispatchedActor
from actors.listeners.recorder import record_events, wait_until
from messages import Address
from messages.events import ClusterEvent, MemberUnreachable, MemberUp
from messages.wire.remote import register

CLUSTER = "bench-remote"
PAYLOAD = b"p" * 64
HEADER = struct.Struct("!I")
READY_TIMEOUT = 60.0

MINIMUMS = {
    "ask_vs_tcp_ratio": 0.40,
    "ask_vs_thespian_ratio": 3.0,
    "ask_vs_xoscar_ratio": 1.3,
    "tell_msgs_per_s": 100_000.0,
}
MAXIMUMS = {"ask_p99_over_p50": 3.0, "member_unreachable_events": 0.0}


@functools.partial(register, name="bench.Ping")
class Ping(msgspec.Struct, frozen=True, array_like=True):
    number: int


@functools.partial(register, name="bench.Pong")
class Pong(msgspec.Struct, frozen=True, array_like=True):
    number: int


@functools.partial(register, name="bench.Blob")
class Blob(msgspec.Struct, frozen=True, array_like=True):
    data: bytes


@functools.partial(register, name="bench.HowMany")
class HowMany(msgspec.Struct, frozen=True, array_like=True):
    """Asks the counter how many ``Blob`` it has had, once it has had ``at_least`` (or 0)."""


def pong(message: Any) -> Any:
    """The echo's answer: a ``Pong`` for a ``Ping``."""
    return Pong(message.number) if isinstance(message, Ping) else None


class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return pong(message)


class HostedEcho(DispatchedActor):
    """The echo run by the node's I/O thread (started in ``node.dispatcher.hosting()``)."""

    def on_receive(self, message: Any) -> Any:
        return pong(message)


class Counter(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Blob):
            self.count += 1
            return None
        return self.count if isinstance(message, HowMany) else None


# -- the other processes ------------------------------------------------------------------------


def serve(port: int) -> None:
    """The remote member: echo and counter registered; leaves when stdin closes."""
    with actors.start_member(cluster_name=CLUSTER, port=port) as node:
        node.register("echo", Echo.start())
        with node.dispatcher.hosting():
            node.register("hosted-echo", HostedEcho.start())
        node.register("count", Counter.start())
        print("ready", flush=True)
        sys.stdin.read()
        node.leave(timeout=10)
    pykka.ActorRegistry.stop_all()


def tcp_echo(port: int) -> None:
    """The raw TCP floor's other end: echoes every length-prefixed frame."""
    with socket.create_server(("127.0.0.1", port)) as server:
        print("ready", flush=True)
        peer, _ = server.accept()
    with peer:
        peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        while data := peer.recv(1 << 16):
            buffer += data
            for frame in whole_frames(buffer):
                peer.sendall(frame)


def whole_frames(buffer: bytearray) -> list[bytes]:
    """The whole length-prefixed frames at the start of ``buffer`` (headers included), taken
    out of it; a partial one stays for the next read."""
    frames = []
    while len(buffer) >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer)
        if len(buffer) < HEADER.size + size:
            break
        frames.append(bytes(buffer[: HEADER.size + size]))
        del buffer[: HEADER.size + size]
    return frames


@contextlib.contextmanager
def process(*args: str, script: str = __file__) -> Iterator[subprocess.Popen[str]]:
    """``script`` (this one) in another process with ``args``, once it has printed ``ready``."""
    child = subprocess.Popen(
        [sys.executable, str(Path(script).resolve()), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], READY_TIMEOUT)
        if not ready or child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{args} did not start")
        yield child
    finally:
        assert child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            child.stdin.close()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def on_event(unreachable: list[ClusterEvent]) -> Callable[[ClusterEvent], None]:
    def keep(event: ClusterEvent) -> None:
        if isinstance(event, MemberUnreachable):
            unreachable.append(event)

    return keep


def members_up(events: tuple[ClusterEvent, ...]) -> int:
    return len({event.member.uuid for event in events if isinstance(event, MemberUp)})


# -- measurements -------------------------------------------------------------------------------


def timed_round_trips(count: int, warm_up: int, round_trip: Callable[[int], None]) -> list[float]:
    """Seconds of each of ``count`` round trips, after ``warm_up`` untimed ones."""
    for number in range(warm_up):
        round_trip(number)
    seconds = []
    for number in range(count):
        start = time.perf_counter()
        round_trip(number)
        seconds.append(time.perf_counter() - start)
    return seconds


def tcp_ping_pong(count: int) -> list[float]:
    port = free_port()
    with process("--tcp-echo", str(port)), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = HEADER.pack(100) + b"x" * 100

        def round_trip(_: int) -> None:
            sock.sendall(frame)
            got = 0
            while got < len(frame):
                got += len(sock.recv(1 << 16))

        return timed_round_trips(count, count // 10, round_trip)


def remote_asks(node: actors.Node, other: Address, count: int, name: str) -> list[float]:
    echo = node.remote(name, member=other)

    def round_trip(number: int) -> None:
        reply = echo.ask(Ping(number), timeout=10)
        assert reply == Pong(number), reply

    return timed_round_trips(count, count // 10, round_trip)


def remote_tells(node: actors.Node, other: Address, count: int) -> float:
    counter = node.remote("count", member=other)
    before = counter.ask(HowMany(), timeout=10)
    blob = Blob(PAYLOAD)
    start = time.perf_counter()
    for _ in range(count):
        counter.tell(blob)
    while counter.ask(HowMany(), timeout=30) < before + count:
        pass
    return count / (time.perf_counter() - start)


def thespian_asks(count: int) -> list[float] | None:
    if importlib.util.find_spec("thespian") is None:
        return None
    from thespian.actors import ActorSystem
    from thespian_echo import Echo as ThespianEcho

    system = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()})
    try:
        echo = system.createActor(ThespianEcho)

        def round_trip(number: int) -> None:
            assert system.ask(echo, number, 10) == number

        return timed_round_trips(count, count // 10, round_trip)
    finally:
        system.shutdown()


def xoscar_python(given: str | None) -> str | None:
    """An interpreter that imports xoscar: ``given``, else this one if it can; None if none."""
    for python in (given, sys.executable):
        if python is not None:
            probe = [python, "-c", "import xoscar"]
            if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
                return python
    return None


def xoscar_asks(python: str, count: int) -> list[float]:
    """Seconds of each of ``count`` sequential xoscar calls (``xoscar_echo.py``, by ``python``)."""
    script = Path(__file__).resolve().with_name("xoscar_echo.py")
    done = subprocess.run(
        [python, str(script), str(count)],
        capture_output=True,
        text=True,
        check=True,
        timeout=READY_TIMEOUT + count * 0.01,
    )
    seconds: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds


def percentile(seconds: list[float], fraction: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer round trips, one repetition")
    parser.add_argument(
        "--xoscar-python",
        help="an interpreter with xoscar installed, for the side-by-side column "
        "(default: this one, if it imports xoscar; none: the column is skipped)",
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--tcp-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.tcp_echo:
        tcp_echo(args.tcp_echo)
        return
    asks, tells, repeats = (1_000, 20_000, 1) if args.quick else (5_000, 200_000, 3)
    report = Report(MAXIMUMS, MINIMUMS)
    report.environment()
    xoscar = xoscar_python(args.xoscar_python)
    if xoscar is None:
        report("xoscar", "not installed (pip install xoscar, or --xoscar-python PATH)")
    unreachable: list[ClusterEvent] = []
    port = free_port()
    with (
        process("--serve", str(port)),
        actors.start_member(
            cluster_name=CLUSTER,
            port=0,
            seeds=[Address("127.0.0.1", port)],
        ) as node,
    ):
        recorder = record_events(node.listeners, on_event(unreachable))
        wait_until(recorder, lambda events: members_up(events) == 2, READY_TIMEOUT)
        rows: dict[str, list[float]] = {}
        for _ in range(repeats):
            figures = measure(node, Address("127.0.0.1", port), asks, tells, xoscar)
            for name, value in figures.items():
                rows.setdefault(name, []).append(value)
        for name, values in rows.items():
            report(name, statistics.median(values))
        node.leave(timeout=10)
    report("member_unreachable_events", len(unreachable))
    report.check_targets()


def measure(
    node: actors.Node, other: Address, asks: int, tells: int, xoscar: str | None
) -> dict[str, float]:
    """One repetition: every column once (xoscar's when ``xoscar`` names its interpreter)."""
    ask = remote_asks(node, other, asks, "echo")
    hosted = remote_asks(node, other, asks, "hosted-echo")
    tcp = tcp_ping_pong(asks)
    thespian = thespian_asks(asks // 2)
    xoscar_calls = None if xoscar is None else xoscar_asks(xoscar, asks)
    figures = {
        "ask_round_trips_per_s": len(ask) / sum(ask),
        "ask_p50_us": percentile(ask, 0.5) * 1e6,
        "ask_p99_us": percentile(ask, 0.99) * 1e6,
        "ask_p99_over_p50": percentile(ask, 0.99) / percentile(ask, 0.5),
        "hosted_ask_round_trips_per_s": len(hosted) / sum(hosted),
        "hosted_ask_p50_us": percentile(hosted, 0.5) * 1e6,
        "hosted_ask_p99_over_p50": percentile(hosted, 0.99) / percentile(hosted, 0.5),
        "tcp_round_trips_per_s": len(tcp) / sum(tcp),
        "tcp_p50_us": percentile(tcp, 0.5) * 1e6,
        "tell_msgs_per_s": remote_tells(node, other, tells),
    }
    figures["ask_vs_tcp_ratio"] = (
        figures["ask_round_trips_per_s"] / figures["tcp_round_trips_per_s"]
    )
    figures["hosted_ask_vs_tcp_ratio"] = (
        figures["hosted_ask_round_trips_per_s"] / figures["tcp_round_trips_per_s"]
    )
    if thespian is not None:
        figures["thespian_round_trips_per_s"] = len(thespian) / sum(thespian)
        figures["ask_vs_thespian_ratio"] = (
            figures["ask_round_trips_per_s"] / figures["thespian_round_trips_per_s"]
        )
    if xoscar_calls is not None:
        figures["xoscar_round_trips_per_s"] = len(xoscar_calls) / sum(xoscar_calls)
        figures["xoscar_p50_us"] = percentile(xoscar_calls, 0.5) * 1e6
        figures["xoscar_p99_us"] = percentile(xoscar_calls, 0.99) * 1e6
        figures["ask_vs_xoscar_ratio"] = (
            figures["ask_round_trips_per_s"] / figures["xoscar_round_trips_per_s"]
        )
        figures["hosted_ask_vs_xoscar_ratio"] = (
            figures["hosted_ask_round_trips_per_s"] / figures["xoscar_round_trips_per_s"]
        )
    return figures


if __name__ == "__main__":
    main()
