"""The direct lane of application frames: written from any thread straight to a link's socket,
in the order of their stamps, never past a frame queued before, never on a closed link.

Three levels: ``write_now`` on one link over a socketpair (no loop); the ``Lane`` over a loop that
records what it would write (its stamps under concurrency, and its refusal while an envelope of
the ordering actor's way is in transit); and nodes over TCP (asks and answers of several threads,
a thread's tell before its ask, an answer whose link has closed).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, WatchedNode, poll_until
from support.links import bare_link

from actors.messaging.lane import Lane
from actors.transport.link import Link, consume, enqueue, next_batch, write_now
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.local.routing import GetOrderingStats
from messages.membership.effects import CloseLink
from messages.messaging.envelope import Envelope, Tell
from messages.settings import Settings
from messages.wire.handshake import Identity, Role
from messages.wire.remote import RemoteTimeout, register


@register
class Bump(msgspec.Struct, frozen=True):
    thread: int
    number: int


@register
class Total(msgspec.Struct, frozen=True):
    """Asks a ``Tally`` for the bumps it has had from one thread."""

    thread: int


class Tally(pykka.ThreadingActor):
    """Counts ``Bump``s per thread and checks each thread's come in order; answers ``Total``."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, int] = {}
        self.out_of_order = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Bump):
            expected = self.counts.get(message.thread, 0)
            self.out_of_order += message.number != expected
            self.counts[message.thread] = expected + 1
            return message
        if isinstance(message, Total):
            return self.counts.get(message.thread, 0)
        if message == "out of order":
            return self.out_of_order
        return None


class Held(pykka.ThreadingActor):
    """Answers once ``release`` is set."""

    def __init__(self, asked: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.asked = asked
        self.release = release

    def on_receive(self, message: Any) -> Any:
        self.asked.set()
        self.release.wait(STEP_TIMEOUT)
        return "late"


# -- one link, no loop --------------------------------------------------------------------------


@pytest.fixture
def ends() -> Iterator[tuple[Link, socket.socket]]:
    """An established plain link on one end of a socketpair, and the other end to read."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(STEP_TIMEOUT)
    link = bare_link(ours)
    link.identity = Identity("peer", Role.MEMBER)
    yield link, theirs
    ours.close()
    theirs.close()


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def test_a_frame_goes_straight_to_an_idle_links_socket(ends: tuple[Link, socket.socket]) -> None:
    link, theirs = ends
    sent: list[str] = []
    assert write_now(link, lambda: b"frame", lambda: sent.append("sent")) is True
    assert read_exactly(theirs, 5) == b"frame"
    assert sent == ["sent"]
    assert (link.outbound_bytes, link.data_bytes, link.current) == (0, 0, None)


def test_a_frame_waits_behind_what_is_queued_and_keeps_its_place(
    ends: tuple[Link, socket.socket],
) -> None:
    link, _ = ends
    enqueue(link, b"first", data=True)
    enqueue(link, b"beat")  # a membership frame: its own lane, first
    assert write_now(link, lambda: b"second", None) is None  # queued: the loop sends it
    batch = next_batch(link)
    assert [bytes(queued.frame) for queued in batch] == [b"beat", b"first", b"second"]


def test_what_the_socket_does_not_take_waits_as_the_frame_on_its_way(
    ends: tuple[Link, socket.socket],
) -> None:
    link, _ = ends
    big = b"x" * (8 << 20)  # more than both kernel buffers hold
    assert write_now(link, lambda: big, None) is None
    assert link.current is not None
    assert link.outbound_bytes == len(link.current.frame) < len(big)
    assert link.data_bytes == len(big)
    assert write_now(link, lambda: b"after", None) is None  # behind it, never interleaved
    assert list(link.data) == [(b"after", None)]


@pytest.mark.parametrize(
    "state",
    ["closed", "closing", "connecting", "proving", "in handshake", "no identity", "tls"],
)
def test_a_link_not_up_for_it_refuses_without_making_the_frame(
    ends: tuple[Link, socket.socket], state: str
) -> None:
    link, _ = ends
    match state:
        case "closed":
            link.open = False
        case "closing":
            link.closing = "bye"
        case "connecting":
            link.connecting = True
        case "proving":
            link.proving = cast(Any, object())
        case "in handshake":
            link.check_hello = lambda hello: None
        case "no identity":
            link.identity = None
        case "tls":
            link.tls = cast(Any, object())

    def frame() -> bytes:
        raise AssertionError("made a frame for a link that refuses it")

    assert write_now(link, frame, None) is False
    assert (link.outbound_bytes, link.current) == (0, None)


def test_writers_in_many_threads_never_interleave_their_frames(
    ends: tuple[Link, socket.socket],
) -> None:
    link, theirs = ends
    threads, each = 6, 200
    size = 3000

    def write(thread: int) -> None:
        for number in range(each):
            frame = f"{thread:02d}{number:04d}".encode().ljust(size, b".")
            if write_now(link, lambda frame=frame: frame, None) is None:  # type: ignore[misc]
                with link.lock:  # what the loop does with what waits: send it, in order
                    flush(link)

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    received: list[bytes] = []
    reader = threading.Thread(
        target=lambda: received.append(read_exactly(theirs, threads * each * size))
    )
    reader.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(STEP_TIMEOUT)
    while link.outbound_bytes:
        with link.lock:
            flush(link)
    reader.join(STEP_TIMEOUT)
    wire = received[0]
    frames = [wire[i : i + size] for i in range(0, len(wire), size)]
    assert all(frame.rstrip(b".").isdigit() for frame in frames), "a frame was cut by another"
    for thread in range(threads):
        mine = [int(f[2:6]) for f in frames if f[:2] == f"{thread:02d}".encode()]
        assert mine == list(range(each)), "each thread's frames in its order, once each"


def flush(link: Link) -> None:
    """Send what the socket takes (holding the link's lock), as ``LinkTable.flush`` does."""
    while link.outbound_bytes:
        batch = next_batch(link)
        try:
            sent = link.sock.send(b"".join(queued.frame for queued in batch))
        except BlockingIOError:
            sent = 0
        consume(link, batch, sent)
        if not sent:
            return


# -- the lane over a recording loop ------------------------------------------------------------


class Recording:
    """Stands in for the ``IoLoop``: every link is up, and its writes are kept in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written: list[Envelope] = []
        self.up = True

    def write_now(self, link: int, frame: Callable[[], bytes], on_sent: Any) -> bool | None:
        if not self.up:
            return False
        with self.lock:  # the link's lock
            self.written.append(msgspec.msgpack.decode(frame(), type=Envelope))
        on_sent()
        return True

    def encode(self, envelope: Envelope) -> bytes:
        return msgspec.msgpack.encode(envelope)


def tell(number: int) -> Tell:
    return Tell("x", "", msgspec.Raw(msgspec.msgpack.encode(number)))


def lane_over(loop: Recording) -> Lane:
    return Lane(cast(IoLoop, loop), Settings(cluster_name="t"), {Address("127.0.0.1", 1): 7})


def test_the_lanes_stamps_reach_the_link_in_their_order_from_many_threads() -> None:
    loop = Recording()
    lane = lane_over(loop)
    there = Address("127.0.0.1", 1)

    def send(thread: int) -> None:
        for number in range(300):
            assert lane.send("b", tell(thread * 1000 + number), lambda: None, address=there)

    workers = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(STEP_TIMEOUT)
    assert [e.sequence for e in loop.written] == list(range(1, 1201)), "no gap, no duplicate"
    assert loop.written[0].version_clock is not None, "the first defines the version"


def test_nothing_goes_straight_while_the_ordering_actors_envelopes_are_in_transit() -> None:
    loop = Recording()
    lane = lane_over(loop)
    there = Address("127.0.0.1", 1)
    sent: list[str] = []
    envelopes, on_sent = lane.stamp("b", [tell(1), tell(2)], lambda: sent.append("run"))
    assert [e.sequence for e in envelopes] == [1, 2]
    assert not lane.send("b", tell(3), lambda: None, address=there), "it would overtake them"
    assert not loop.written
    assert on_sent is not None
    on_sent()  # the run is written
    assert sent == ["run"]
    assert lane.send("b", tell(3), lambda: None, address=there)
    assert [e.sequence for e in loop.written] == [3], "numbered after them, nothing skipped"


def test_a_refused_send_stamps_nothing() -> None:
    loop = Recording()
    lane = lane_over(loop)
    loop.up = False
    assert not lane.send("b", tell(1), lambda: None, link=3)
    assert not lane.send("b", tell(1), lambda: None, address=Address("127.0.0.1", 2))  # no route
    loop.up = True
    assert lane.send("b", tell(1), lambda: None, link=3)
    assert [e.sequence for e in loop.written] == [1]


# -- nodes over TCP ------------------------------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[tuple[ClusterHarness, WatchedNode, WatchedNode]]:
    with ClusterHarness(causal_wait=2.0) as harness:
        a, b = harness.start_many(2)
        harness.wait_all_up()
        yield harness, a, b


def test_asks_and_tells_of_many_threads_all_arrive_once_in_each_threads_order(
    pair: tuple[ClusterHarness, WatchedNode, WatchedNode],
) -> None:
    """Threads that tell, ask and are answered at once, each over the direct lane or the router's
    way as the gate decides: every tell arrives once, in its thread's order, before that thread's
    next ask (which counts it), and every answer is its own ask's."""
    _, a, b = pair
    b.node.register("tally", Tally.start())
    tally = a.node.remote("tally", member=b.uuid)
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        try:
            for number in range(150):
                tally.tell(Bump(thread, 2 * number))
                assert tally.ask(Bump(thread, 2 * number + 1)) == Bump(thread, 2 * number + 1)
                assert tally.ask(Total(thread)) == 2 * number + 2, "its tell came first"
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(STEP_TIMEOUT * 3)
    assert not errors, errors
    assert tally.ask("out of order") == 0
    stats = b.node.ordering.ask(GetOrderingStats(), timeout=STEP_TIMEOUT)
    assert (stats.envelopes_late, stats.held) == (0, 0), "no gap, nothing waited out"
    poll_until(lambda: a.node.gate.in_flight == (0, 0), "every place in the gate given back")


def test_an_answer_whose_link_has_closed_is_dropped_and_the_ask_ends_by_its_timeout(
    pair: tuple[ClusterHarness, WatchedNode, WatchedNode],
) -> None:
    _, a, b = pair
    asked, release = threading.Event(), threading.Event()
    b.node.register("held", Held.start(asked, release))
    outcome: list[BaseException | Any] = []

    def ask() -> None:
        try:
            outcome.append(a.node.remote("held", member=b.uuid).ask("hi", timeout=4.0))
        except BaseException as error:
            outcome.append(error)

    asker = threading.Thread(target=ask)
    asker.start()
    assert asked.wait(STEP_TIMEOUT)
    transport = b.node.transport.proxy()
    link = transport.route(a.address).get(timeout=STEP_TIMEOUT)
    assert link is not None
    a.node.transport.tell(CloseLink(b.address, "the test closes it"))
    poll_until(
        lambda: transport.route(a.address).get(timeout=STEP_TIMEOUT) != link,
        "b has seen its link to a close",
    )
    release.set()  # b answers on the link the ask came by, which is gone
    asker.join(STEP_TIMEOUT)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RemoteTimeout)
    poll_until(lambda: b.node.gate.in_flight == (0, 0), "the answer's place given back")
    assert a.node.remote("held", member=b.uuid).ask("again", timeout=STEP_TIMEOUT) == "late"
    assert not a.node.asks.numbers(), "no ask left in flight"


def test_a_blocking_ask_of_a_stopped_node_is_refused_at_once(
    pair: tuple[ClusterHarness, WatchedNode, WatchedNode],
) -> None:
    """The direct way registers no ask once the router has stopped: the asker hears at once
    that the node stopped, not after a timeout, and holds no place in the gate."""
    _, a, b = pair
    b.node.register("tally", Tally.start())
    tally = a.node.remote("tally", member=b.uuid)
    assert tally.ask(Total(0)) == 0
    a.node.stop()
    with pytest.raises(RuntimeError, match="this node has stopped"):
        tally.ask(Total(0), timeout=STEP_TIMEOUT)
    assert a.node.gate.in_flight == (0, 0)
    assert not a.node.asks.numbers()
