"""The I/O thread and the transport over real loopback sockets.

Order, close, limits, one link a pair.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, RawLink, Received, Sink, poll_until

from actors.dispatch.actor import DispatchedActor
from actors.transport.actor import TransportActor, bind_listener
from actors.transport.loop import IoLoop
from actors.transport.timers import Timer, TimerQueue
from messages import Address
from messages.local.commands import Listen
from messages.local.links import LinkClosed
from messages.membership.effects import CloseLink, Inbound, PeerGone, SendTo
from messages.membership.protocol import ClientUpdate, Heartbeat, Watch
from messages.settings import Settings
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder, encode_frame
from messages.wire.handshake import Hello, HelloAccepted, Identity, Role

HELLO = Hello(cluster_name="c", protocol_version=1, uuid="me", role=Role.MEMBER)


def frame(message: Any) -> bytes:
    return encode_frame(WIRE_CODEC.encode(message))


def beat(sequence: int) -> Heartbeat:
    return Heartbeat(from_uuid="me", to_uuid="you", sequence=sequence)


class Served:
    """A ``Sink`` actor and what it received."""

    def __init__(self) -> None:
        self.received = Received()
        self.ref = Sink.start(self.received)

    def wait_for(self, predicate: Callable[[list[Any]], bool]) -> list[Any]:
        return self.received.wait_for(predicate)

    @property
    def messages(self) -> list[Any]:
        return self.received.messages


@pytest.fixture
def loop() -> Iterator[IoLoop]:
    io = IoLoop(WIRE_CODEC, Settings(cluster_name="c", connect_timeout=0.5), name="test-io")
    yield io
    io.stop()


@pytest.fixture
def sink() -> Served:
    return Served()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(STEP_TIMEOUT)
        yield server


def read_messages(sock: socket.socket, count: int) -> list[Any]:
    decoder = FrameDecoder()
    messages: list[Any] = []
    while len(messages) < count:
        data = sock.recv(1 << 16)
        assert data, f"EOF after {len(messages)} of {count} messages"
        messages.extend(WIRE_CODEC.decode(payload) for payload in decoder.feed(data))
    return messages


def address_of(server: socket.socket) -> Address:
    return Address("127.0.0.1", server.getsockname()[1])


def test_a_dialled_link_sends_its_first_frames_then_every_write_in_order(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    link = loop.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    for sequence in range(5000):
        loop.write(link, frame(beat(sequence)))
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(STEP_TIMEOUT)
        messages = read_messages(peer, 5001)
    assert messages[0] == HELLO
    assert [m.sequence for m in messages[1:]] == list(range(5000))


def test_messages_from_the_peer_arrive_as_inbound_with_the_link(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    link = loop.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    peer, _ = listener.accept()
    with peer:
        peer.sendall(frame(beat(1)) + frame(beat(2))[:5])
        peer.sendall(frame(beat(2))[5:])
        messages = sink.wait_for(lambda got: len(got) >= 2)
    assert messages[:2] == [
        Inbound(beat(1), link, f"127.0.0.1:{listener.getsockname()[1]}"),
        Inbound(beat(2), link, f"127.0.0.1:{listener.getsockname()[1]}"),
    ]


def test_a_dialled_links_frames_carry_the_identity_its_peers_accept_named(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    """The peer's ``HelloAccepted`` names who it is: kept as the link's identity (a member at
    the address dialled), not delivered; every later frame carries it."""
    address = address_of(listener)
    link = loop.dial(address, frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    peer, _ = listener.accept()
    with peer:
        peer.sendall(frame(HelloAccepted(uuid="them")) + frame(beat(1)))
        messages = sink.wait_for(lambda got: len(got) >= 1)
    identity = Identity("them", Role.MEMBER, address)
    assert messages[:1] == [Inbound(beat(1), link, f"127.0.0.1:{address.port}", identity)]


def test_close_sends_what_is_queued_first_and_reports_the_reason(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    link = loop.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    for sequence in range(100):
        loop.write(link, frame(beat(sequence)))
    loop.close(link, "done here")
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(STEP_TIMEOUT)
        assert len(read_messages(peer, 101)) == 101
        assert peer.recv(1) == b""  # then the end of the stream
    closed = sink.wait_for(lambda got: any(isinstance(m, LinkClosed) for m in got))
    assert closed[-1] == LinkClosed(link=link, peer=address_of(listener), reason="done here")


def test_a_refused_connection_is_a_link_closed_with_the_reason(loop: IoLoop, sink: Served) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        nobody = address_of(server)  # closed at once: nothing listens there any more
    link = loop.dial(nobody, frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    (closed,) = sink.wait_for(lambda got: len(got) == 1)
    assert closed.link == link
    assert closed.reason.startswith(f"cannot connect to {nobody}: ECONNREFUSED: ")


def test_a_connect_that_gets_no_answer_times_out_without_blocking_the_loop(
    loop: IoLoop, sink: Served
) -> None:
    """A listener whose backlog is full drops SYNs, as a host behind a partition does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        address = address_of(server)
        fillers = []
        for _ in range(4):  # a backlog of 0 takes one or two, then SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((address.host, address.port))
            fillers.append(filler)
        try:
            started = time.monotonic()
            link = loop.dial(address, frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
            loop.write(link, frame(beat(1)))
            (closed,) = sink.wait_for(lambda got: len(got) == 1)
            assert closed.reason == f"cannot connect to {address}: no answer within 0.5 s"
            assert 0.4 < time.monotonic() - started < 5
        finally:
            for filler in fillers:
                filler.close()


def test_a_peer_that_stops_reading_is_disconnected_and_others_are_served(
    sink: Served, listener: socket.socket
) -> None:
    settings = Settings(cluster_name="c", max_outbound_bytes=256 * 1024)
    io = IoLoop(WIRE_CODEC, settings, name="test-io-limited")
    try:
        stuck = io.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
        peer, _ = listener.accept()  # and never read from it
        with peer:
            big = frame(
                Hello(cluster_name="x" * 200, protocol_version=1, uuid="me", role=Role.MEMBER)
            )
            for _ in range(200_000):  # ~50 MB: far more than the kernel's buffers hold
                io.write(stuck, big)
            closed = sink.wait_for(lambda got: any(isinstance(m, LinkClosed) for m in got))
            assert "outbound buffer is full" in closed[-1].reason
            assert "the peer does not keep up" in closed[-1].reason
            with socket.create_server(("127.0.0.1", 0)) as other:
                healthy = io.dial(
                    address_of(other), frame(HELLO), deliver_to=sink.ref, manager=sink.ref
                )
                io.write(healthy, frame(beat(7)))
                other.settimeout(STEP_TIMEOUT)
                reader, _ = other.accept()
                with reader:
                    reader.settimeout(STEP_TIMEOUT)
                    assert read_messages(reader, 2)[1] == beat(7)
    finally:
        io.stop()


def test_nothing_written_to_a_link_the_member_replaces_is_lost(sink: Served) -> None:
    """A member at a lower address dials us while our link to it is busy: the transport, the
    one owner of the links to members, replaces ours by its link; what it wrote before the switch
    goes out on the old link before that closes, what it writes after goes on the new one."""
    io = IoLoop(WIRE_CODEC, Settings(cluster_name="c"), name="test-io-replace")
    try:
        transport, ours = start_transport(io, sink.ref, host="127.0.0.2")
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.settimeout(STEP_TIMEOUT)
            theirs = address_of(server)
            assert theirs < ours  # so their link is the one both keep
            for sequence in range(100):
                transport.tell(SendTo(theirs, beat(sequence)))
            old, _ = server.accept()
            new = socket.create_connection((ours.host, ours.port), timeout=STEP_TIMEOUT)
            their_hello = msgspec.structs.replace(HELLO, uuid="them", address=theirs)
            new.sendall(frame(their_hello))
            for sequence in range(100, 200):
                transport.tell(SendTo(theirs, beat(sequence)))
            got: list[Any] = []
            with old, new:
                old.settimeout(STEP_TIMEOUT)
                new.settimeout(STEP_TIMEOUT)
                decoders = {old: FrameDecoder(), new: FrameDecoder()}
                while sum(isinstance(m, Heartbeat) for m in got) < 200:
                    readable, _, _ = select.select([old, new], [], [], STEP_TIMEOUT)
                    assert readable, f"only {len(got)} messages came"
                    for peer in readable:
                        data = peer.recv(1 << 16)
                        got += [WIRE_CODEC.decode(p) for p in decoders[peer].feed(data)]
                while old.recv(1 << 16):  # the replaced link closes, once flushed
                    pass
        beats = [m.sequence for m in got if isinstance(m, Heartbeat)]
        assert sorted(beats) == list(range(200))
    finally:
        pykka.ActorRegistry.stop_all()
        io.stop()


def test_membership_frames_overtake_queued_application_frames(sink: Served) -> None:
    """End to end over TCP, a few frames: everything is queued while the connect is pending (the
    listener's backlog is full, so the SYN waits for its retry), then goes out membership first.
    The lanes themselves, for any amount the socket takes, are tested in test_link.py."""
    io = IoLoop(WIRE_CODEC, Settings(cluster_name="c", connect_timeout=STEP_TIMEOUT), name="lane")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = [socket.socket() for _ in range(4)]  # a backlog of 0 takes one or two
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(server.getsockname())
        try:
            sent = threading.Semaphore(0)
            link = io.dial(address_of(server), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
            for number in range(10):
                io.write(link, encode_frame(b"%d" % number), data=True, on_sent=sent.release)
            io.write(link, encode_frame(b"membership"))
            io.call_later(0.0, sink.ref, "queued")  # commands run in order: all are queued now
            sink.wait_for(lambda got: "queued" in got)
            for filler in fillers:
                filler.close()
            server.settimeout(STEP_TIMEOUT)
            payloads: list[bytes] = []
            while not payloads:  # the fillers' connections end at once; the link's speaks
                peer, _ = server.accept()
                with peer, contextlib.suppress(ConnectionResetError):
                    peer.settimeout(STEP_TIMEOUT)
                    decoder = FrameDecoder()
                    while len(payloads) < 12 and (data := peer.recv(1 << 16)):
                        payloads.extend(decoder.feed(data))
        finally:
            for filler in fillers:
                filler.close()
            io.stop()
    assert payloads[1:] == [b"membership"] + [b"%d" % number for number in range(10)]
    for _ in range(10):
        assert sent.acquire(timeout=STEP_TIMEOUT), "on_sent is called for every data frame"


def test_application_frames_never_close_a_link_and_dropped_ones_are_reported(
    sink: Served, listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(cluster_name="c", max_outbound_bytes=64 * 1024)
    io = IoLoop(WIRE_CODEC, settings, name="test-io-data")
    done = threading.Semaphore(0)
    try:
        link = io.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
        peer, _ = listener.accept()  # reads nothing until the end
        with peer:
            payload = encode_frame(b"x" * 4000)
            for _ in range(5000):  # ~20 MB queued: bounded by the flow gate, not by the link
                io.write(link, payload, data=True, on_sent=done.release)
            io.write(link, frame(beat(1)))
            with caplog.at_level("WARNING", logger="actors.transport"):
                io.close(link, "closed by the test")
                got = sink.wait_for(lambda got: any(isinstance(m, LinkClosed) for m in got))
            assert [m.reason for m in got if isinstance(m, LinkClosed)] == ["closed by the test"]
            for _ in range(5000):  # every frame written or dropped, never forgotten
                assert done.acquire(timeout=STEP_TIMEOUT)
        assert "unsent application message(s)" in caplog.text
    finally:
        io.stop()


def test_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    queue = TimerQueue()
    fired: list[str] = []

    def note(name: str, again: bool = False) -> Timer:
        def action() -> bool:
            fired.append(name)
            return again

        return Timer(action, 1.0 if again else None)

    queue.add(2.0, note("b"))
    queue.add(1.0, note("a"))
    queue.add(1.5, note("cancelled")).cancel()
    ticker = queue.add(1.0, note("tick", again=True))
    assert queue.next_deadline() == 1.0
    assert queue.fire_due(2.0) == 3
    assert fired == ["a", "tick", "b"]
    assert queue.next_deadline() == 3.0  # the ticker's next period
    queue.fire_due(10.0)  # a late loop: one tick, not a burst for the periods it missed
    assert fired == ["a", "tick", "b", "tick"]
    assert queue.next_deadline() == 11.0
    ticker.cancel()
    assert queue.next_deadline() is None


def test_call_every_tells_until_cancelled(loop: IoLoop, sink: Served) -> None:
    timer = loop.call_every(0.01, sink.ref, "tick")
    sink.wait_for(lambda got: len(got) >= 3)
    timer.cancel()
    count = len(sink.messages)
    loop.call_later(0.05, sink.ref, "later")
    messages = sink.wait_for(lambda got: got[-1] == "later")
    assert messages.count("tick") <= count + 1  # at most one already on its way


# -- a node's transport ---------------------------------------------------------------------------


def established(port_a: int, port_b: int) -> int:
    """Established TCP connections accepted on either port of 127.0.0.1 (from /proc/net/tcp):
    the links between two members listening there, when nothing else dials them."""
    accepting = {f"0100007F:{port_a:04X}", f"0100007F:{port_b:04X}"}
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[3] == "01" and row[1] in accepting)


def start_transport(
    io: IoLoop,
    sink: pykka.ActorRef[Any],
    host: str = "127.0.0.1",
    peer_news: pykka.ActorRef[Any] | None = None,
) -> tuple[pykka.ActorRef[Any], Address]:
    listener = bind_listener(Address(host, 0))
    address = Address(host, listener.getsockname()[1])
    transport = TransportActor.start(
        loop=io,
        listener=listener,
        hello=msgspec.structs.replace(HELLO, uuid=str(address), address=address),
        check_hello=lambda hello: None,
        codec=WIRE_CODEC,
    )
    transport.tell(Listen(deliver_to=sink, peer_news=peer_news))
    return transport, address


def test_the_membership_actor_hears_of_a_refused_dial_and_of_a_link_the_peer_closed(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    """A refused dial and a link ended by the peer are told to ``peer_news`` as ``PeerGone``
    (evidence a process is gone); a link this end closes is not."""
    news = Served()
    transport, _ = start_transport(loop, sink.ref, peer_news=news.ref)
    try:
        with socket.create_server(("127.0.0.1", 0)) as server:
            nobody = address_of(server)  # closed at once: nothing listens there any more
        transport.tell(SendTo(nobody, beat(1)))
        assert news.wait_for(lambda got: len(got) == 1) == [PeerGone(nobody, refused=True)]
        peer_address = address_of(listener)
        transport.tell(SendTo(peer_address, beat(2)))
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(STEP_TIMEOUT)
            read_messages(peer, 2)  # the Hello and the heartbeat: the link is up
        got = news.wait_for(lambda got: len(got) == 2)
        assert got[1] == PeerGone(peer_address, refused=False)
        transport.tell(SendTo(peer_address, beat(3)))  # a new link, which this end closes
        again, _ = listener.accept()
        with again:
            again.settimeout(STEP_TIMEOUT)
            read_messages(again, 2)
            transport.tell(CloseLink(peer_address, "done here"))
            assert again.recv(1) == b""
        transport.tell(SendTo(nobody, beat(4)))  # news in order: the next is this refusal
        got = news.wait_for(lambda got: len(got) == 3)
        assert got[2] == PeerGone(nobody, refused=True)
    finally:
        transport.stop()
        news.ref.stop()


def test_what_a_client_sends_before_listen_is_delivered_after_it(loop: IoLoop) -> None:
    """A client's ``Watch`` can come the moment a member's port is open, before the member's actors
    are wired (it used to be dropped, and the client waited for an answer that never came). The
    transport reads nothing before ``Listen``: the kernel holds the link until it does."""
    listener = bind_listener(Address("127.0.0.1", 0))
    address = Address("127.0.0.1", listener.getsockname()[1])
    transport = TransportActor.start(
        loop=loop,
        listener=listener,
        hello=msgspec.structs.replace(HELLO, uuid=str(address), address=address),
        check_hello=lambda hello: None,
        codec=WIRE_CODEC,
    )
    served = Served()
    try:
        with RawLink(address) as client:
            client.send(Hello(cluster_name="c", protocol_version=1, uuid="cl", role=Role.CLIENT))
            client.send(Watch())
            transport.tell(Listen(deliver_to=served.ref))
            got = served.wait_for(lambda got: any(isinstance(m, Inbound) for m in got))
            assert [m.message for m in got if isinstance(m, Inbound)] == [Watch()]
    finally:
        transport.stop()
        served.ref.stop()


@pytest.mark.timeout(60)
def test_two_members_that_dial_each_other_at_once_keep_one_link() -> None:
    for _ in range(5):
        loops = [IoLoop(WIRE_CODEC, Settings(cluster_name="c"), name=f"io-{i}") for i in range(2)]
        sinks = [Served(), Served()]
        try:
            (first, a), (second, b) = (
                start_transport(io, s.ref) for io, s in zip(loops, sinks, strict=True)
            )
            first.tell(SendTo(b, beat(1)))
            second.tell(SendTo(a, beat(2)))
            for sequence in range(3, 40):  # both keep talking while the duplicate is resolved
                first.tell(SendTo(b, beat(sequence)))
                second.tell(SendTo(a, beat(sequence)))
            for s in sinks:
                s.wait_for(lambda got: sum(isinstance(m, Inbound) for m in got) >= 1)
            ports = a.port, b.port  # the kernel's socket table: no event announces it
            poll_until(lambda ports=ports: established(*ports) == 1, "one link left")
            first.tell(SendTo(b, beat(100)))
            second.tell(SendTo(a, beat(100)))
            for s in sinks:
                s.wait_for(
                    lambda got: any(isinstance(m, Inbound) and m.message == beat(100) for m in got)
                )
            assert established(a.port, b.port) == 1
            for own_first, sink in ((1, sinks[1]), (2, sinks[0])):  # nothing sent was lost
                got = {
                    m.message.sequence
                    for m in sink.messages
                    if isinstance(m, Inbound) and isinstance(m.message, Heartbeat)
                }
                assert got == {own_first, *range(3, 40), 100}
        finally:
            pykka.ActorRegistry.stop_all()
            for io in loops:
                io.stop()


@pytest.mark.timeout(60)
def test_a_member_serving_200_links_keeps_its_thread_count() -> None:
    with ClusterHarness() as harness:
        node = harness.start()
        harness.wait_all_up()
        baseline = threading.active_count()
        links: list[RawLink] = []
        try:
            for _ in range(200):
                link = RawLink(node.address)
                link.hello(harness.cluster_name)  # a client: its link stays open
                links.append(link)
                assert threading.active_count() == baseline
            for link in links[::50]:
                link.send(Watch())
                assert link.receive(ClientUpdate).state.member(node.uuid) is not None
        finally:
            for link in links:
                link.close()
        assert threading.active_count() == baseline


def test_past_the_link_limit_the_least_recently_used_link_is_closed(sink: Served) -> None:
    io = IoLoop(WIRE_CODEC, Settings(cluster_name="c", max_links=3), name="test-io-lru")
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(4)]
    try:
        links = [
            io.dial(address_of(server), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
            for server in servers[:3]
        ]
        io.write(links[0], frame(beat(1)))  # the first is used again: the second is now the oldest
        io.dial(address_of(servers[3]), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
        (closed,) = sink.wait_for(lambda got: len(got) == 1)
        assert closed.link == links[1]
        assert "the link limit (3) is reached" in closed.reason
    finally:
        io.stop()
        for server in servers:
            server.close()


# -- the actors the I/O thread runs (its dispatcher) ------------------------------------------


class Work:
    """Told to ``OnLoop``: a handler that takes ``seconds`` (busy, not waiting), then counts."""

    def __init__(self, seconds: float, done: list[None]) -> None:
        self.seconds = seconds
        self.done = done


class OnLoop(DispatchedActor):
    """Does ``Work``; asked a function, calls it with itself on the dispatcher's thread."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping: Callable[[], object] = lambda: None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Work):
            time.sleep(message.seconds)
            message.done.append(None)
            return None
        return message(self)

    def on_stop(self) -> None:
        self.stopping()


def test_the_loop_serves_its_sockets_between_turns_of_a_busy_actor(
    loop: IoLoop, sink: Served, listener: socket.socket
) -> None:
    """A backlog of 2 s of work for an actor the loop runs delays a write and a read by a pass
    of actor turns (the dispatch budget and one turn), not by the backlog."""
    with loop.dispatcher.hosting():
        busy = OnLoop.start()
    assert busy.ask(lambda _: threading.current_thread().name, timeout=STEP_TIMEOUT) == "test-io"
    backlog, done = 100, []
    for _ in range(backlog):
        busy.tell(Work(0.02, done))
    link = loop.dial(address_of(listener), frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
    loop.write(link, frame(beat(1)))
    peer, _ = listener.accept()
    with peer:
        peer.settimeout(STEP_TIMEOUT)
        assert read_messages(peer, 2) == [HELLO, beat(1)]
        peer.sendall(frame(beat(2)))
        sink.wait_for(lambda got: any(isinstance(m, Inbound) for m in got))
        assert len(done) < backlog / 2


def test_the_loops_api_called_from_its_own_thread_never_waits(loop: IoLoop, sink: Served) -> None:
    """An actor the loop runs dials (a name: looked up beside the loop, its writes held), writes,
    sets a timer and stops the loop, each without waiting for the loop it runs on; what its
    ``on_stop`` writes still goes out before the sockets close."""
    family, _, _, _, sockaddr = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)[0]
    with socket.create_server((sockaddr[0], 0), family=family) as listener:
        listener.settimeout(STEP_TIMEOUT)
        with loop.dispatcher.hosting():
            actor = OnLoop.start()
        address = Address("localhost", listener.getsockname()[1])

        def dial_write_and_set_a_timer(_: OnLoop) -> int:
            link = loop.dial(address, frame(HELLO), deliver_to=sink.ref, manager=sink.ref)
            for sequence in range(100):
                loop.write(link, frame(beat(sequence)))
            loop.call_later(0.0, sink.ref, "timer")
            return link

        link = actor.ask(dial_write_and_set_a_timer, timeout=STEP_TIMEOUT)
        sink.wait_for(lambda got: "timer" in got)
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(STEP_TIMEOUT)
            messages = read_messages(peer, 101)
            assert messages[0] == HELLO
            assert [m.sequence for m in messages[1:]] == list(range(100))

            def stop_the_loop(on_loop: OnLoop) -> None:
                on_loop.stopping = lambda: loop.write(link, frame(beat(100)))
                loop.stop()

            actor.ask(stop_the_loop, timeout=STEP_TIMEOUT)
            assert read_messages(peer, 1) == [beat(100)]
            assert peer.recv(1) == b""  # then the loop closed the link as it ended
    assert not actor.is_alive()
    loop.thread.join(STEP_TIMEOUT)  # the loop's thread ends after its last pass
    assert not loop.dispatcher.is_running


def test_a_name_that_does_not_resolve_closes_the_link_dialled_from_the_loop(
    loop: IoLoop, sink: Served
) -> None:
    with loop.dispatcher.hosting():
        actor = OnLoop.start()

    def dial_and_write(_: OnLoop) -> int:
        link = loop.dial(
            Address("nowhere.invalid", 5701), frame(HELLO), deliver_to=sink.ref, manager=sink.ref
        )
        loop.write(link, frame(beat(1)), data=True, on_sent=lambda: sink.ref.tell("dropped"))
        return link

    link = actor.ask(dial_and_write, timeout=STEP_TIMEOUT)
    closed, dropped = sink.wait_for(lambda got: len(got) == 2)
    assert isinstance(closed, LinkClosed)
    assert closed.link == link
    assert closed.reason.startswith("cannot connect to nowhere.invalid:5701")
    assert dropped == "dropped"
