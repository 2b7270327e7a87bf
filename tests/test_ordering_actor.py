"""The ordering actor alone, with stand-ins for the actors around it.

Pass-through, hold-back, stamps.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from cluster_helpers import Keeping, Received, Sink

from actors.dispatch.actor import DispatchedActor, tell_now
from actors.messaging.ordering import OrderingActor
from actors.transport.loop import IoLoop
from messages.address import Address
from messages.local.routing import (
    Deliver,
    Delivered,
    GetOrderingStats,
    PublishEnvelope,
    SendEnvelope,
    SendEnvelopes,
    SendRun,
)
from messages.membership.effects import Inbound, MembershipReached, SendTo
from messages.membership.protocol import Heartbeat
from messages.messaging.envelope import MAX_RUN, Envelope, Envelopes, Publish, Tell
from messages.messaging.versions import EMPTY_DIGEST, version_digest
from messages.settings import Settings
from messages.vector_clock import VectorClock
from messages.wire.codec import WIRE_CODEC
from messages.wire.framing import FrameDecoder
from messages.wire.handshake import Identity, Role

TIMEOUT = 10.0


class Deliveries(Received):
    """What the router is told, each ``Deliver`` of a ``Delivered`` on its own, in order."""

    def add(self, message: Any) -> None:
        for deliver in message.deliveries if isinstance(message, Delivered) else [message]:
            super().add(deliver)


class Rig:
    """An ordering actor whose membership, router and transport are sinks."""

    def __init__(self, causal_wait: float = 5.0) -> None:
        settings = Settings(cluster_name="t", causal_wait=causal_wait)
        self.loop = IoLoop(WIRE_CODEC, settings, name="ordering-test-io")
        self.membership, self.router, self.transport = Received(), Deliveries(), Received()
        self.actor = OrderingActor.start(
            "me",
            settings,
            self.loop,
            transport=Sink.start(self.transport),
            start_peers=lambda ordering: (Sink.start(self.membership), Sink.start(self.router)),
        )

    @staticmethod
    def envelope(
        sender: str, sequence: int, body: Any, needs: VectorClock | None = None
    ) -> Inbound:
        """An envelope from ``sender`` that names (and defines) the version it ``needs``."""
        identity = Identity(sender, Role.MEMBER)
        digest = EMPTY_DIGEST if needs is None else version_digest(needs)
        envelope = Envelope(sequence=sequence, version=digest, body=body, version_clock=needs)
        return Inbound(envelope, 7, sender, identity)

    def delivered(self) -> list[Any]:
        return [m.envelope.body for m in self.router.messages if isinstance(m, Deliver)]

    def stats(self) -> Any:
        return self.actor.ask(GetOrderingStats(), timeout=TIMEOUT)


@pytest.fixture
def rig() -> Iterator[Rig]:
    built = Rig()
    yield built
    built.loop.stop()


def tell(number: int) -> Tell:
    return Tell("x", "", msgspec.Raw(msgspec.msgpack.encode(number)))


def test_membership_messages_go_straight_to_the_membership_actor(rig: Rig) -> None:
    heartbeat = Inbound(Heartbeat("a", "me", 1), 3, "peer")
    rig.actor.tell(heartbeat)
    assert rig.membership.wait_for(lambda got: len(got) == 1) == [heartbeat]
    assert rig.stats().membership_messages == 1


def test_what_its_peers_tell_it_before_it_runs_waits_for_it() -> None:
    """The membership actor and the router are started with its ref before it runs (they need it,
    as it needs theirs); what they tell it meanwhile is handled once it does, nothing lost."""
    settings = Settings(cluster_name="t")
    loop = IoLoop(WIRE_CODEC, settings, name="ordering-early-io")
    membership = Received()
    heartbeat = Inbound(Heartbeat("a", "me", 1), 3, "peer")

    def start_peers(ordering: Any) -> tuple[Any, Any]:
        ordering.tell(heartbeat)
        return Sink.start(membership), Sink.start(Received())

    actor = OrderingActor.start(
        "me", settings, loop, transport=Sink.start(Received()), start_peers=start_peers
    )
    try:
        assert membership.wait_for(lambda got: len(got) == 1) == [heartbeat]
    finally:
        actor.stop()
        loop.stop()


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_envelopes_reach_the_router_in_each_senders_order(rig: Rig, seed: int) -> None:
    arrivals = [(sender, n) for sender in ("a", "b") for n in range(1, 21)]
    random.Random(seed).shuffle(arrivals)
    for sender, number in arrivals:
        rig.actor.tell(rig.envelope(sender, number, tell(number)))
    rig.router.wait_for(lambda got: len(got) == 40)
    for sender in ("a", "b"):
        order = [
            msgspec.msgpack.decode(m.envelope.body.payload)
            for m in rig.router.messages
            if m.envelope.sender == sender
        ]
        assert order == list(range(1, 21))


def test_an_envelope_waits_for_the_membership_its_sender_had_seen(rig: Rig) -> None:
    rig.actor.tell(rig.envelope("a", 1, tell(1), VectorClock({"m": 2})))
    rig.actor.tell(rig.envelope("b", 1, tell(2)))  # envelopes keep their order among themselves
    (from_b,) = rig.router.wait_for(lambda got: len(got) == 1)
    assert from_b.envelope.sender == "b"
    assert rig.stats().held == 1
    rig.actor.tell(MembershipReached(VectorClock({"m": 2}), frozenset()))
    rig.router.wait_for(lambda got: len(got) == 2)
    assert rig.stats().held == 0


def test_what_waits_too_long_is_delivered_late_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(causal_wait=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="actors.messaging.ordering"):
            rig.actor.tell(rig.envelope("a", 2, tell(2)))  # 1 never comes
            (deliver,) = rig.router.wait_for(lambda got: len(got) == 1)
        assert deliver.late == "1 earlier message(s) from a never came"
        assert "Delivering Tell from a late: 1 earlier message(s) from a never came" in caplog.text
        assert rig.stats().envelopes_late == 1
    finally:
        rig.loop.stop()


def test_an_unreadable_version_is_dropped_and_the_actor_keeps_working(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """A version whose clock is not the one its digest names."""
    forged = Envelope(
        sequence=1, version=EMPTY_DIGEST, body=tell(1), version_clock=VectorClock({"m": 1})
    )
    with caplog.at_level(logging.WARNING, logger="actors.messaging.ordering"):
        rig.actor.tell(Inbound(forged, 7, "a", Identity("a", Role.MEMBER)))
        rig.actor.tell(rig.envelope("a", 1, tell(1)))
        rig.router.wait_for(lambda got: len(got) == 1)
    assert "bad version" in caplog.text


def test_sends_are_stamped_with_a_sequence_per_receiver_and_this_nodes_membership(
    rig: Rig,
) -> None:
    rig.actor.tell(MembershipReached(VectorClock({"m": 5}), frozenset()))
    there = Address("127.0.0.1", 9)
    for to in ("b", "c", "b"):
        rig.actor.tell(SendEnvelope(to, tell(0), address=there))
    sent = rig.transport.wait_for(lambda got: len(got) == 3)
    assert [(type(m), m.message.sequence) for m in sent] == [(SendTo, 1), (SendTo, 1), (SendTo, 2)]
    assert {m.message.version for m in sent} == {version_digest(VectorClock({"m": 5}))}
    # The version's clock goes with the first envelope to each receiver, not with the next ones.
    assert [m.message.version_clock for m in sent] == [VectorClock({"m": 5})] * 2 + [None]
    assert {m.message.sender for m in sent} == {""}  # the receiver knows it from the link


def test_answers_go_straight_to_the_io_thread_and_member_envelopes_to_the_transport(
    rig: Rig,
) -> None:
    """The transport owns the links to members (one owner: no envelope can go to a link it has
    replaced); an answer to a client needs no route and goes straight on the asker's link."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT)
        client = Address("127.0.0.1", server.getsockname()[1])
        sink = Sink.start(Received())
        link = rig.loop.dial(client, b"", deliver_to=sink, manager=sink)
        member = Address("127.0.0.1", 9)
        rig.actor.tell(SendEnvelope("b", tell(1), address=member))
        rig.actor.tell(SendEnvelope("c", tell(2), link=link))  # an answer, on the asker's link
        peer, _ = server.accept()
        with peer:
            peer.settimeout(TIMEOUT)
            decoder = FrameDecoder()
            frames: list[Any] = []
            while len(frames) < 1:
                frames += [WIRE_CODEC.decode(p) for p in decoder.feed(peer.recv(1 << 16))]
    assert [(f.sequence, msgspec.msgpack.decode(f.body.payload)) for f in frames] == [(1, 2)]
    (sent,) = rig.transport.wait_for(lambda got: len(got) == 1)
    assert sent.address == member
    assert (sent.message.sequence, msgspec.msgpack.decode(sent.message.body.payload)) == (1, 1)


def test_publishes_are_delivered_in_causal_order_across_senders(rig: Rig) -> None:
    """b published after it had delivered a's first publish: no one sees b's before a's."""
    first = Publish("t", "", msgspec.Raw(b"\x01"), VectorClock({"a": 1}))
    second = Publish("t", "", msgspec.Raw(b"\x02"), VectorClock({"a": 1, "b": 1}))
    rig.actor.tell(rig.envelope("b", 1, second))
    assert rig.stats().envelopes_delivered == 0
    rig.actor.tell(rig.envelope("a", 1, first))
    rig.router.wait_for(lambda got: len(got) == 2)
    assert rig.delivered() == [first, second]


def test_an_own_publish_reaches_this_nodes_subscribers_and_every_member(rig: Rig) -> None:
    members = (("b", Address("127.0.0.1", 9)), ("c", Address("127.0.0.1", 10)))
    rig.actor.tell(PublishEnvelope(members, "t", "", b"\x07"))
    (local,) = rig.router.wait_for(lambda got: len(got) == 1)
    sent = rig.transport.wait_for(lambda got: len(got) == 2)
    assert local.envelope.body.clock == VectorClock({"me": 1})
    assert {m.address.port for m in sent} == {9, 10}


def test_membership_messages_overtake_a_backlog_of_envelopes() -> None:
    """A burst of application messages waiting in the inbox never holds up a heartbeat."""
    inbox = OrderingActor._create_actor_inbox()
    envelopes = [
        Inbound(Envelope(sequence=n + 1, version=EMPTY_DIGEST, body=tell(n)), 1, "a")
        for n in range(3)
    ]
    heartbeat = Inbound(Heartbeat("a", "me", 1), 1, "a")

    class Item:  # what pykka puts in an inbox: the message and where a reply goes
        def __init__(self, message: Any) -> None:
            self.message = message

    for message in (*envelopes[:2], heartbeat, envelopes[2]):
        inbox.put(Item(message))
    assert inbox.qsize() == 4
    assert [inbox.get().message for _ in range(4)] == [heartbeat, *envelopes]


def test_a_batch_to_one_receiver_goes_in_runs_each_within_a_frame() -> None:
    """Stamped in order, the clock with the first; split into runs of at most ``MAX_RUN``
    envelopes and 64 KiB (or half a frame); a run of one goes as a plain envelope."""
    settings = Settings(cluster_name="t", max_frame_bytes=1024 * 1024)
    loop = IoLoop(WIRE_CODEC, settings, name="ordering-runs-io")
    transport = Received()
    actor = OrderingActor.start(
        "me",
        settings,
        loop,
        transport=Sink.start(transport),
        start_peers=lambda ordering: (Sink.start(Received()), Sink.start(Received())),
    )
    try:
        actor.tell(MembershipReached(VectorClock({"m": 5}), frozenset()))
        there = Address("127.0.0.1", 9)
        actor.tell(SendEnvelopes("b", [tell(n) for n in range(2000)], address=there))
        payload = msgspec.msgpack.encode(b"y" * 25_000)
        large = [Tell("x", "", msgspec.Raw(payload)) for _ in range(5)]
        actor.tell(SendEnvelopes("b", large, address=there))
        first, second = transport.wait_for(lambda got: len(got) == 2)
    finally:
        actor.stop()
        loop.stop()
    assert isinstance(first, SendRun)
    assert isinstance(second, SendRun)
    runs = [[f] if isinstance(f, Envelope) else f.envelopes for f in first.frames]
    assert len(runs) > 1
    assert all(1 < len(run) <= MAX_RUN for run in runs)
    assert [e.sequence for run in runs for e in run] == list(range(1, 2001))
    clocks = [e.version_clock for run in runs for e in run]
    assert clocks == [VectorClock({"m": 5})] + [None] * 1999
    # 25 KB each, runs of at most 64 KiB: two, two, and one alone.
    assert [len(f.envelopes) if isinstance(f, Envelopes) else 1 for f in second.frames] == [2, 2, 1]
    assert isinstance(second.frames[2], Envelope)
    sizes = [len(WIRE_CODEC.encode(frame)) for frame in (*first.frames, *second.frames)]
    assert max(sizes) <= 64 * 1024


def test_a_run_off_a_link_reaches_the_router_in_order_in_one_hop(rig: Rig) -> None:
    identity = Identity("a", Role.MEMBER)
    run = Envelopes([Envelope(sequence=n, version=EMPTY_DIGEST, body=tell(n)) for n in (2, 1, 3)])
    rig.actor.tell(Inbound(run, 7, "a", identity))
    got = rig.router.wait_for(lambda got: len(got) == 3)
    assert [msgspec.msgpack.decode(m.envelope.body.payload) for m in got] == [1, 2, 3]
    assert {m.envelope.sender for m in got} == {"a"}
    assert rig.stats().envelopes_delivered == 3


def test_an_envelope_of_a_run_naming_another_sender_is_dropped_alone(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    identity = Identity("a", Role.MEMBER)
    forged = Envelope(sender="b", sequence=1, version=EMPTY_DIGEST, body=tell(0))
    run = Envelopes(
        [
            Envelope(sequence=1, version=EMPTY_DIGEST, body=tell(1)),
            forged,
            Envelope(sequence=2, version=EMPTY_DIGEST, body=tell(2)),
        ]
    )
    with caplog.at_level(logging.WARNING, logger="actors.messaging.ordering"):
        rig.actor.tell(Inbound(run, 7, "a", identity))
        got = rig.router.wait_for(lambda got: len(got) == 2)
    assert [(m.envelope.sender, m.envelope.sequence) for m in got] == [("a", 1), ("a", 2)]
    assert "it names b as its sender, but its link's handshake named a" in caplog.text


class _DispatchedSink(Keeping, DispatchedActor):
    """A router stand-in on the loop's dispatcher, so that the ordering actor's hand-over can
    run it at once (``tell_now``)."""


class _Runner(DispatchedActor):
    """Runs the callable it is asked on the loop's thread (the read's place)."""

    def on_receive(self, message: Any) -> Any:
        return message()


@pytest.mark.parametrize("seed", range(3))
def test_fast_and_slow_envelopes_interleaved_reach_the_router_in_order(seed: int) -> None:
    """The read's fast path (``tell_now``: handled in the call when the ordering actor is idle)
    and the slow one (``tell``: queued for a turn) interleaved, on the loop's thread: each
    sender's envelopes reach the router in order, a fast one never overtakes a slow one, and a
    held envelope (a gap, a membership version not reached) still waits, fast or not."""
    settings = Settings(cluster_name="t")
    loop = IoLoop(WIRE_CODEC, settings, name="ordering-fast-io")
    router = Deliveries()
    with loop.dispatcher.hosting():
        actor = OrderingActor.start(
            "me",
            settings,
            loop,
            transport=Sink.start(Received()),
            start_peers=lambda ordering: (Sink.start(Received()), _DispatchedSink.start(router)),
        )
        runner = _Runner.start()
    envelope = Rig.envelope
    rng = random.Random(seed)
    try:

        def fast_alone() -> int:
            tell_now(actor, envelope("a", 1, tell(1)))
            return len(router.messages)  # handled in the call, the router's hand-off too

        assert runner.ask(fast_alone, timeout=TIMEOUT) == 1

        def interleaved() -> None:
            for number in range(2, 42):
                how = tell_now if rng.random() < 0.5 else type(actor).tell
                how(actor, envelope("a", number, tell(number)))

        runner.ask(interleaved, timeout=TIMEOUT)
        router.wait_for(lambda got: len(got) == 41)

        version = VectorClock({"m": 2})

        def held() -> int:
            tell_now(actor, envelope("b", 2, tell(2)))  # a gap: held
            tell_now(actor, envelope("c", 1, tell(1), version))  # its version not reached
            tell_now(actor, envelope("c", 2, tell(2)))  # behind it
            return len(router.messages)

        assert runner.ask(held, timeout=TIMEOUT) == 41  # nothing more, fast path or not
        runner.ask(lambda: tell_now(actor, envelope("b", 1, tell(1))), timeout=TIMEOUT)
        router.wait_for(lambda got: len(got) == 43)  # b1 fills the gap: b1, b2
        assert actor.ask(GetOrderingStats(), timeout=TIMEOUT).held == 2  # c still waits
        actor.tell(MembershipReached(version, frozenset()))
        router.wait_for(lambda got: len(got) == 45)
        for sender, count in (("a", 41), ("b", 2), ("c", 2)):
            order = [
                msgspec.msgpack.decode(m.envelope.body.payload)
                for m in router.messages
                if m.envelope.sender == sender
            ]
            assert order == list(range(1, count + 1))
    finally:
        loop.stop()
