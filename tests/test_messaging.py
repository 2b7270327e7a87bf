"""Cluster messaging between in-process members: asks, tells, load balancing, every error."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, ClusterHarness, WatchedNode, all_up, saw
from support.faulty_transport import DelayPeers

from messages.events import MemberRemoved
from messages.local.routing import GetOrderingStats, RemoteAsk, RemoteFailure, RemoteReply
from messages.wire.remote import (
    MemberGone,
    NoMemberAvailable,
    NoSuchActor,
    RemoteActorFailed,
    RemoteTimeout,
    register,
)


@register
class Ping(msgspec.Struct, frozen=True):
    number: int


@register
class Pong(msgspec.Struct, frozen=True):
    number: int
    by: str


class Unregistered(msgspec.Struct, frozen=True):
    number: int


class Echo(pykka.ThreadingActor):
    """Answers ``Ping(n)`` with ``Pong(n, its name)``, raises on ``Ping(-1)``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.seen: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            if message.number < 0:
                raise ValueError(f"negative: {message.number}")
            self.seen.append(message.number)
            return Pong(message.number, self.name)
        if message == "count":
            return len(self.seen)
        if message == "seen":
            return list(self.seen)
        return None


class Stuck(pykka.ThreadingActor):
    """Answers only once ``release`` is set (or never)."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_receive(self, message: Any) -> Any:
        self.release.wait(STEP_TIMEOUT)
        return "late"


class Asker(pykka.ThreadingActor):
    """An application actor that asks by messages and keeps the replies."""

    def __init__(self, replies: list[Any], done: threading.Event) -> None:
        super().__init__()
        self.replies = replies
        self.done = done

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RemoteReply | RemoteFailure):
            self.replies.append(message)
            self.done.set()
        return None


@pytest.fixture
def cluster() -> Iterator[tuple[ClusterHarness, list[WatchedNode]]]:
    with ClusterHarness(causal_wait=2.0) as harness:
        nodes = harness.start_many(3)
        harness.wait_all_up()
        for node in nodes:
            node.node.register("echo", Echo.start(str(node.address)))
        yield harness, nodes


def test_a_remote_ask_gets_the_answer_of_the_named_members_actor(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, c) = cluster
    for target, member in ((b, b.uuid), (c, c.address), (b, b.node.member), (c, str(c.address))):
        assert a.node.remote("echo", member=member).ask(Ping(7)) == Pong(7, str(target.address))
    future = a.node.remote("echo", member=b.uuid).ask(Ping(8), block=False)
    assert future.get(timeout=STEP_TIMEOUT) == Pong(8, str(b.address))
    assert a.node.remote("echo", member=a.uuid).ask(Ping(9)) == Pong(9, str(a.address))


def test_tells_arrive_in_the_order_they_were_sent(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    echo = a.node.remote("echo", member=b.uuid)
    for number in range(500):
        echo.tell(Ping(number))
    assert echo.ask("seen") == list(range(500))  # the ask comes after the tells, in order


def test_tells_from_several_threads_keep_each_threads_order_to_each_member(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    """The callers' messages leave in batches (one run of envelopes a member): each thread's
    messages still reach each member in the order that thread sent them, none lost."""
    _, (a, b, c) = cluster
    echoes = [a.node.remote("echo", member=member.uuid) for member in (b, c)]

    def send(thread: int) -> None:
        for number in range(400):
            for echo in echoes:
                echo.tell(Ping(thread * 1000 + number))

    threads = [threading.Thread(target=send, args=(t,), name=f"sender-{t}") for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(STEP_TIMEOUT)
    for echo in echoes:
        seen = echo.ask("seen")
        assert len(seen) == 1200
        for t in range(3):
            assert [n for n in seen if n // 1000 == t] == [t * 1000 + n for n in range(400)]


def test_a_publish_goes_after_the_tells_its_thread_sent_before_it(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    """Tells wait in the outbox while a publish goes to the router as an ask: the router takes
    them first, so the member gets them in the order the thread sent them."""
    _, (a, b, _) = cluster
    both = Echo.start("both")
    b.node.register("both", both)
    b.node.subscribe("news", both)
    target = a.node.remote("both", member=b.uuid)
    for number in range(3000):
        target.tell(Ping(number))
    a.node.publish("news", Ping(10**6))
    assert target.ask("seen") == [*range(3000), 10**6]


def test_a_stopped_node_refuses_to_send(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    echo = a.node.remote("echo", member=b.uuid)
    a.node.stop()
    with pytest.raises(RuntimeError, match="this node has stopped"):
        echo.tell(Ping(1))
    assert a.node.gate.in_flight == (0, 0)


def test_the_load_balancer_spreads_asks_round_robin(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, c) = cluster
    anyone = a.node.remote("echo")
    answered_by = [anyone.ask(Ping(n)).by for n in range(30)]
    assert {by: answered_by.count(by) for by in answered_by} == {
        str(node.address): 10 for node in (a, b, c)
    }
    assert [answered_by[i % 3] for i in range(30)] == answered_by  # strictly in turn


def test_a_random_load_balancer_spreads_asks_roughly_evenly(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    harness, nodes = cluster
    client = harness.start_client([nodes[0].address], load_balancing="random")
    client.wait(all_up({node.uuid for node in nodes}), STEP_TIMEOUT, "three members up")
    anyone = client.owner.remote("echo")
    answered_by = [anyone.ask(Ping(n)).by for n in range(300)]
    counts = {by: answered_by.count(by) for by in answered_by}
    assert set(counts) == {str(node.address) for node in nodes}
    assert all(60 <= count <= 140 for count in counts.values()), counts  # 100 ± 5 sd
    assert [answered_by[i % 3] for i in range(300)] != answered_by  # not in turn


def test_every_failure_comes_back_as_a_clear_error(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    with pytest.raises(NoSuchActor, match="no actor is registered as 'nobody'"):
        a.node.remote("nobody", member=b.uuid).ask(Ping(1))
    with pytest.raises(RemoteActorFailed, match="ValueError: negative: -1") as failed:
        a.node.remote("echo", member=b.uuid).ask(Ping(-1))
    assert failed.value.error_type == "ValueError"
    with pytest.raises(TypeError, match="Unregistered is not a registered message type"):
        a.node.remote("echo", member=b.uuid).tell(Unregistered(1))
    with pytest.raises(TypeError, match="cannot travel"):
        a.node.remote("echo", member=b.uuid).ask(object())
    with pytest.raises(NoMemberAvailable, match="no up member"):
        a.node.remote("echo", member="127.0.0.1:1").ask(Ping(1))
    assert a.node.remote("echo", member=b.uuid).ask(Ping(2)).number == 2  # all still works


def test_an_ask_that_gets_no_answer_times_out_on_time(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    release = threading.Event()
    b.node.register("stuck", Stuck.start(release))
    started = time.monotonic()
    with pytest.raises(RemoteTimeout, match=r"no answer within 0\.5 s"):
        a.node.remote("stuck", member=b.uuid).ask("hello", timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3.0
    release.set()


def test_an_ask_to_a_member_that_goes_away_fails_when_it_is_downed_not_at_the_timeout(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, _, c) = cluster
    release = threading.Event()
    c.node.register("stuck", Stuck.start(release))
    future = a.node.remote("stuck", member=c.uuid).ask("hello", timeout=60.0, block=False)
    started = time.monotonic()
    c.node.stop()  # as a crash looks to the others
    with pytest.raises(MemberGone, match=f"member {c.address} was downed before it answered"):
        future.get(timeout=STEP_TIMEOUT)
    assert time.monotonic() - started < STEP_TIMEOUT
    a.wait(saw(MemberRemoved, c.uuid))
    with pytest.raises(NoMemberAvailable):
        a.node.remote("echo", member=c.uuid).ask(Ping(1))
    release.set()


def test_application_actors_ask_by_messages_and_get_typed_replies(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    replies: list[Any] = []
    done = threading.Event()
    asker = Asker.start(replies, done)
    a.node.router.tell(RemoteAsk("echo", Ping(5), asker, member=b.uuid, correlation="first"))
    assert done.wait(STEP_TIMEOUT)
    done.clear()
    a.node.router.tell(RemoteAsk("nobody", Ping(5), asker, member=b.uuid, correlation="second"))
    assert done.wait(STEP_TIMEOUT)
    assert replies[0] == RemoteReply("first", Pong(5, str(b.address)))
    assert replies[1].correlation == "second"
    assert isinstance(replies[1].error, NoSuchActor)


def test_every_inbound_message_goes_through_the_ordering_actor(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, _) = cluster
    before = b.node.ordering.ask(GetOrderingStats(), timeout=STEP_TIMEOUT)
    a.node.remote("echo", member=b.uuid).ask(Ping(1))
    after = b.node.ordering.ask(GetOrderingStats(), timeout=STEP_TIMEOUT)
    assert before.membership_messages > 0  # gossip and heartbeats pass through it
    assert after.envelopes_delivered == before.envelopes_delivered + 1
    assert after.envelopes_late == 0


def test_unregister_makes_a_name_unknown(cluster: tuple[ClusterHarness, list[WatchedNode]]) -> None:
    _, (a, b, _) = cluster
    assert b.node.unregister("echo") is True
    assert b.node.unregister("echo") is False
    with pytest.raises(NoSuchActor):
        a.node.remote("echo", member=b.uuid).ask(Ping(1))


class Subscriber(pykka.ThreadingActor):
    """Keeps what is published on its topic; with ``relay``, answers each ``["first", n]`` with a
    ``["second", n]`` publish of its own (so the second happened after the first)."""

    def __init__(self, got: list[Any], condition: threading.Condition, relay: Any = None) -> None:
        super().__init__()
        self.got = got
        self.condition = condition
        self.relay = relay

    def on_receive(self, message: Any) -> Any:
        with self.condition:
            self.got.append(tuple(message))
            self.condition.notify_all()
        if self.relay is not None and message[0] == "first":
            self.relay.publish("t", ["second", message[1]])
        return None


def test_publishes_reach_every_member_in_causal_order(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    _, (a, b, c) = cluster
    condition = threading.Condition()
    got: dict[str, list[Any]] = {node.uuid: [] for node in (a, b, c)}
    for node in (a, b, c):
        relay = node.node if node is b else None
        node.node.subscribe("t", Subscriber.start(got[node.uuid], condition, relay))
    a.node.transport.tell(DelayPeers(frozenset({c.address}), 0.3))  # b's answers overtake a's
    rounds = 20
    for number in range(rounds):
        a.node.publish("t", ["first", number])
        c.node.publish("t", ["third", number])  # concurrent with both
    with condition:
        assert condition.wait_for(
            lambda: all(len(messages) == 3 * rounds for messages in got.values()), STEP_TIMEOUT
        ), {uuid: len(messages) for uuid, messages in got.items()}
    for messages in got.values():
        for kind in ("first", "second", "third"):
            numbers = [n for k, n in messages if k == kind]
            assert numbers == list(range(rounds))  # each publisher's own order
        for number in range(rounds):
            assert messages.index(("first", number)) < messages.index(("second", number))


def test_a_client_asks_the_members_actors_as_a_member_does(
    cluster: tuple[ClusterHarness, list[WatchedNode]],
) -> None:
    harness, (a, b, c) = cluster
    client = harness.start_client([a.address])
    client.wait(all_up(node.uuid for node in (a, b, c)))
    assert client.owner.remote("echo", member=b.uuid).ask(Ping(3)) == Pong(3, str(b.address))
    anyone = client.owner.remote("echo")
    answered_by = sorted(anyone.ask(Ping(n)).by for n in range(6))
    assert answered_by == sorted(2 * [str(node.address) for node in (a, b, c)])
    client.owner.remote("echo", member=c.uuid).tell(Ping(42))
    assert client.owner.remote("echo", member=c.uuid).ask("seen")[-1] == 42
    with pytest.raises(TypeError, match="a client is no member"):
        client.owner.register("mine", Echo.start("client"))
