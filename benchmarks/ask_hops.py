"""Where a remote ask's time goes: the median of each hop, beside the floor of its thread structure.

Usage: ``python benchmarks/ask_hops.py [--asks N]``. Starts the member of ``benchmarks/remote.py``
(its echo ``ThreadingActor``) in another process, joins it, and times ``N`` sequential asks with
probes: wrappers put, in both processes, around the functions a blocking ask passes through (its
``RemoteRef.ask``, the lane's frame, the link's ``write_now``, the I/O thread's wake from
``select``, the codec's decode, the ordering actor, the router, the actor's inbox, the future's
set and get). Each probe notes a timestamp (``perf_counter_ns``: one clock for both processes);
the round trips are lined up hop by hop and each hop's median printed, in the order of the path:

- *python*: this project's code between two probes on one thread;
- *send*: the link's ``socket.send`` of one frame, under its lock (loopback TCP does the
  receiver's work in it);
- *wake*: from a send, or from the I/O thread's entering ``select`` (which lets the GIL go), to
  the woken thread running Python. A thread woken in the process (the actor by the put in its
  inbox, the asker by the set of its future) runs only once the I/O thread lets the GIL go: the
  I/O thread's rest of its pass (``put -> idle``, ``set -> idle``) is on the path too.

Beside them, in the same run, the floor of the path's structure without any of its code: raw
loopback TCP ping-pong (two threads, as ``remote.py``), and the same four threads as an ask
(caller, I/O thread, I/O thread, actor thread) passing a frame with nothing else to do. The
probes cost about a microsecond each, so the total is a little above ``remote.py``'s figure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import queue
import selectors
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import remote
from report import Report

import actors
from actors.cli.demo import free_port
from actors.listeners.recorder import record_events, wait_until
from actors.messaging import futures, lane, ordering, remote_ref, router
from actors.transport import loop
from messages import Address
from messages.wire import framing

_events: list[tuple[int, str]] = []
_note = _events.append

# The path of a round trip: each probe's label, in order (the I/O threads' labels say which end).
PATH = (
    "ask",  # the caller enters RemoteRef.ask
    "write",  # the lane asks the link to write (write_now)
    "frame",  # the envelope is stamped and encoded
    "framed",
    "sent",  # write_now returned: the frame is in the kernel
    "B:woke",  # the answering member's I/O thread is back from select
    "B:decode",
    "B:ordering",
    "B:router",
    "B:put",  # the ask is put in the actor's inbox
    "B:idle",  # the I/O thread enters select: it lets the GIL go
    "actor",  # the actor's thread runs its on_receive
    "write",
    "frame",
    "framed",
    "sent",
    "A:woke",  # the asking member's I/O thread is back from select
    "A:decode",
    "A:ordering",
    "A:router",
    "A:set",  # the asker's future is set
    "A:idle",
    "got",  # the asker is back from its wait
    "return",
)
KIND = {
    ("framed", "sent"): "send",
    ("sent", "B:woke"): "wake",
    ("B:idle", "actor"): "wake",
    ("sent", "A:woke"): "wake",
    ("A:idle", "got"): "wake",
}


def probe(owner: Any, name: str, label: str | Callable[[], str], after: bool = False) -> None:
    """Wrap ``owner.name`` to note ``label`` on entry (or on return, ``after``)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not after:
            _note((time.perf_counter_ns(), label() if callable(label) else label))
        result = original(*args, **kwargs)
        if after:
            _note((time.perf_counter_ns(), label() if callable(label) else label))
        return result

    setattr(owner, name, wrapped)


def install_probes(end: str) -> None:
    """Probes on this process's path of an ask; ``end`` is ``A`` (the asker) or ``B``."""
    original_select = selectors.EpollSelector.select

    def select(
        self: selectors.EpollSelector, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        io_thread = threading.current_thread().name.startswith("io-")
        if io_thread:
            _note((time.perf_counter_ns(), f"{end}:idle"))
        ready = original_select(self, timeout)
        if ready and io_thread:
            _note((time.perf_counter_ns(), f"{end}:woke"))
        return ready

    selectors.EpollSelector.select = select  # type: ignore[method-assign,assignment]
    probe(remote_ref.RemoteRef, "ask", "ask")
    probe(remote_ref.RemoteRef, "ask", "return", after=True)
    probe(loop, "write_now", "write")
    probe(loop, "write_now", "sent", after=True)
    probe(lane.Lane, "_frame", "frame")
    probe(lane.Lane, "_frame", "framed", after=True)
    probe(framing.Codec, "decode", f"{end}:decode")
    probe(ordering.OrderingActor, "on_receive", f"{end}:ordering")
    probe(router.RouterActor, "on_receive", f"{end}:router")
    probe(router, "ask_without_waiting", f"{end}:put")
    probe(futures.OneShot, "set", f"{end}:set")
    probe(futures.OneShot, "get", "got", after=True)
    probe(remote.Echo, "on_receive", "actor")


def hops(events: list[tuple[int, str]]) -> dict[int, list[float]]:
    """Microseconds of each hop of ``PATH`` (by the index of its end), over the round trips
    found whole in ``events``."""
    found: dict[int, list[float]] = {}
    trip: list[int] = []
    for stamp, label in sorted(events):
        if label == "ask":
            trip = [stamp]
        elif trip and len(trip) < len(PATH) and label == PATH[len(trip)]:
            trip.append(stamp)
            if len(trip) == len(PATH):
                for index in range(1, len(PATH)):
                    found.setdefault(index, []).append((trip[index] - trip[index - 1]) / 1000)
                trip = []
    return found


# -- the member at the other end ---------------------------------------------------------------


def serve(port: int, dump: str) -> None:
    """``remote.py``'s member with probes; writes its events to ``dump`` when it leaves."""
    install_probes("B")
    try:
        remote.serve(port)
    finally:
        Path(dump).write_text(json.dumps(_events))


# -- the floor: the same threads with nothing to do ----------------------------------------------


def _frames(sock: socket.socket, on_frame: Callable[[bytes], None]) -> None:
    """An I/O thread's loop: select, read, hand each whole frame on (until the peer closes)."""
    selector = selectors.DefaultSelector()
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
    buffer = bytearray()
    with contextlib.suppress(OSError):
        while True:
            selector.select()
            data = sock.recv(1 << 16)
            if not data:
                return
            buffer += data
            for frame in remote.whole_frames(buffer):
                on_frame(frame)


def threads_echo(port: int) -> None:
    """The floor's answering end: an I/O thread hands each frame to an actor thread, which
    sends it back."""
    with socket.create_server(("127.0.0.1", port)) as server:
        print("ready", flush=True)
        peer, _ = server.accept()
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    inbox: queue.Queue[bytes] = queue.Queue()

    def actor() -> None:
        while True:
            peer.send(inbox.get())

    threading.Thread(target=actor, daemon=True).start()
    _frames(peer, inbox.put)


def threads_ping_pong(count: int) -> list[float]:
    """Round trips through the floor's four threads: the caller sends and waits on a lock that
    its I/O thread releases when the answer is in."""
    port = free_port()
    with (
        remote.process("--threads-echo", str(port), script=__file__),
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = remote.HEADER.pack(100) + b"x" * 100
        waiting: list[threading.Lock] = []
        threading.Thread(
            target=_frames, args=(sock, lambda _: waiting.pop().release()), daemon=True
        ).start()

        def round_trip(_: int) -> None:
            answered = threading.Lock()
            answered.acquire()
            waiting.append(answered)
            sock.send(frame)
            answered.acquire()

        return remote.timed_round_trips(count, count // 10, round_trip)


# -- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def probed_member(dump: str) -> Iterator[int]:
    """The member with probes, in another process; its port."""
    port = free_port()
    with remote.process("--serve", str(port), "--dump", dump, script=__file__):
        yield port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=5_000, help="round trips timed")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--threads-echo", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.dump)
        return
    if args.threads_echo:
        threads_echo(args.threads_echo)
        return
    report = Report({})
    report.environment()
    tcp = remote.tcp_ping_pong(args.asks)
    threads = threads_ping_pong(args.asks)
    install_probes("A")
    with tempfile.TemporaryDirectory() as directory:
        dump = os.path.join(directory, "member.json")
        with (
            probed_member(dump) as port,
            actors.start_member(
                cluster_name=remote.CLUSTER, port=0, seeds=[Address("127.0.0.1", port)]
            ) as node,
        ):
            recorder = record_events(node.listeners, lambda _: None)
            wait_until(recorder, lambda events: remote.members_up(events) == 2, 60)
            echo = node.remote("echo", member=Address("127.0.0.1", port))
            for number in range(args.asks // 10):
                echo.ask(remote.Ping(number), timeout=10)
            _events.clear()
            start = time.perf_counter()
            for number in range(args.asks):
                echo.ask(remote.Ping(number), timeout=10)
            seconds = time.perf_counter() - start
            asked = list(_events)
            node.leave(timeout=10)
        answered = [(stamp, label) for stamp, label in json.loads(Path(dump).read_text())]
    found = hops(asked + answered)
    whole = len(next(iter(found.values()), []))
    report("round_trips_whole", whole)
    report("ask_mean_us", seconds / args.asks * 1e6)
    totals: dict[str, float] = {"python": 0.0, "send": 0.0, "wake": 0.0}
    for index, values in sorted(found.items()):
        first, then = PATH[index - 1], PATH[index]
        kind = KIND.get((first, then), "python")
        median = statistics.median(values)
        totals[kind] += median
        report(f"hop_{index:02d}_{kind}_us ({first} -> {then})", median)
    for kind, total in totals.items():
        report(f"sum_of_medians_{kind}_us", total)
    report("sum_of_medians_us", sum(totals.values()))
    report("tcp_p50_us", remote.percentile(tcp, 0.5) * 1e6)
    report("four_threads_no_code_p50_us", remote.percentile(threads, 0.5) * 1e6)


if __name__ == "__main__":
    main()
