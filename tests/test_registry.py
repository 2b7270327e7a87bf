"""ListenerRegistryActor: subscriptions, initial states, atomicity, fan-out, dead subscribers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import msgspec
import pykka
import pytest
from conftest import (
    DataButRaising,
    MakeMember,
    MembershipFeed,
    UncheckedGetMembers,
    build_member,
    raising_selector,
)

from messages.events import (
    ClusterEvent,
    CurrentClusterState,
    MemberEvent,
    MemberJoined,
    MemberRemoved,
    MemberUp,
)
from messages.local.commands import (
    AddCallbackListener,
    GetClusterState,
    GetMembers,
    InitialState,
    RemoveListener,
    Subscribe,
    Unsubscribe,
)
from messages.member import (
    DataMemberSelector,
    LiteMemberSelector,
    Member,
    MemberStatus,
)
from messages.membership.replay import replay_events

TIMEOUT = 10


class GetReceived(msgspec.Struct, frozen=True):
    """Ask a Recorder for everything it has received so far."""


class Recorder(pykka.ThreadingActor):
    """A subscriber actor that keeps every message it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, GetReceived):
            return tuple(self.received)
        self.received.append(message)
        return None


def received(recorder: pykka.ActorRef[Any]) -> tuple[Any, ...]:
    result: tuple[Any, ...] = recorder.ask(GetReceived(), timeout=TIMEOUT)
    return result


def subscribe(
    registry: pykka.ActorRef[Any],
    subscriber: pykka.ActorRef[Any],
    events: tuple[type[ClusterEvent], ...] = (ClusterEvent,),
    initial_state: InitialState = InitialState.NONE,
) -> str:
    registration_id: str = registry.ask(
        Subscribe(subscriber, events=events, initial_state=initial_state), timeout=TIMEOUT
    )
    return registration_id


def test_live_events_are_filtered_by_type(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    everything, ups_only = Recorder.start(), Recorder.start()
    subscribe(registry, everything)
    subscribe(registry, ups_only, events=(MemberUp,))
    joining = make_member(1)
    joined = MemberJoined(version=1, member=joining)

    feed.change((joined,), (joining,))
    up = feed.up(joining)
    feed.sync()

    assert received(everything) == (joined, MemberUp(version=2, member=up))
    assert received(ups_only) == (MemberUp(version=2, member=up),)


def test_initial_events_replay_the_state_filtered_by_type(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    first, second = feed.up(make_member(1)), feed.up(make_member(2))
    joining = make_member(3)
    feed.change((MemberJoined(version=3, member=joining),), (first, second, joining))
    state = feed.sync()
    every_event, ups_only = Recorder.start(), Recorder.start()

    subscribe(registry, every_event, initial_state=InitialState.EVENTS)
    subscribe(registry, ups_only, events=(MemberUp,), initial_state=InitialState.EVENTS)

    assert received(every_event) == replay_events(state)
    assert received(ups_only) == (MemberUp(3, first), MemberUp(3, second))


def test_initial_snapshot_is_the_current_state(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    feed.up(make_member(1))
    state = feed.sync()
    recorder = Recorder.start()

    subscribe(registry, recorder, events=(MemberUp,), initial_state=InitialState.SNAPSHOT)

    assert received(recorder) == (state,)


def test_no_initial_state_gives_nothing_before_live_events(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    feed.up(make_member(1))
    recorder = Recorder.start()

    subscribe(registry, recorder, initial_state=InitialState.NONE)

    assert received(recorder) == ()


def up_uuids_seen(initial_state: InitialState, messages: tuple[Any, ...]) -> list[str]:
    """The uuids of the up members a subscriber learnt of, from its initial state and events."""
    if initial_state is InitialState.SNAPSHOT:
        snapshot, *events = messages
        assert isinstance(snapshot, CurrentClusterState)
        assert all(event.version > snapshot.version for event in events)
        return [m.uuid for m in snapshot.up_members] + [e.member.uuid for e in events]
    return [event.member.uuid for event in messages]


@pytest.mark.parametrize("initial_state", [InitialState.EVENTS, InitialState.SNAPSHOT])
def test_subscribing_during_changes_sees_each_member_exactly_once(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, initial_state: InitialState
) -> None:
    """Subscribe from three threads between rounds of changes told by a producer thread.

    Round r's Subscribe is queued after round r's changes and before round r + 1's, so the
    subscriber must learn of the first (r + 1) * PER_ROUND members from its initial state and of
    every later one from live events: all of them, each exactly once.
    """
    rounds, per_round, threads = 12, 5, 3
    produced = [threading.Event() for _ in range(rounds)]
    subscribed = [threading.Event() for _ in range(rounds)]
    recorders: dict[int, pykka.ActorRef[Any]] = {}

    def produce() -> None:
        for round_number in range(rounds):
            for index in range(per_round):
                feed.up(build_member(round_number * per_round + index + 1))
            produced[round_number].set()
            subscribed[round_number].wait(TIMEOUT)

    def subscribe_every_third_round(first: int) -> None:
        for round_number in range(first, rounds, threads):
            produced[round_number].wait(TIMEOUT)
            recorder = Recorder.start()
            recorders[round_number] = recorder
            registry.ask(
                Subscribe(recorder, events=(MemberUp,), initial_state=initial_state), block=False
            )
            subscribed[round_number].set()

    workers = [threading.Thread(target=produce)] + [
        threading.Thread(target=subscribe_every_third_round, args=(first,))
        for first in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    feed.sync()

    everyone = [build_member(port).uuid for port in range(1, rounds * per_round + 1)]
    assert sorted(recorders) == list(range(rounds))
    for round_number, recorder in recorders.items():
        messages = received(recorder)
        assert up_uuids_seen(initial_state, messages) == everyone
        live_events = [
            m
            for m in messages
            if isinstance(m, MemberUp) and m.version > round_number * per_round + per_round
        ]
        assert len(live_events) == (rounds - round_number - 1) * per_round


def test_same_subscriber_twice_gets_each_event_twice(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = Recorder.start()
    first, second = subscribe(registry, recorder), subscribe(registry, recorder)

    up = feed.up(make_member(1))
    feed.sync()

    assert first != second
    assert received(recorder) == (MemberUp(1, up), MemberUp(1, up))


def test_unsubscribe_drops_every_registration_of_the_subscriber(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = Recorder.start()
    subscribe(registry, recorder)
    subscribe(registry, recorder, events=(MemberUp,))

    assert registry.ask(Unsubscribe(recorder), timeout=TIMEOUT) is True
    assert registry.ask(Unsubscribe(recorder), timeout=TIMEOUT) is False
    feed.up(make_member(1))
    feed.sync()
    assert received(recorder) == ()


def test_remove_listener_by_id_true_then_false(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = Recorder.start()
    registration_id = subscribe(registry, recorder)

    assert registry.ask(RemoveListener(registration_id), timeout=TIMEOUT) is True
    assert registry.ask(RemoveListener(registration_id), timeout=TIMEOUT) is False
    feed.up(make_member(1))
    feed.sync()
    assert received(recorder) == ()


def test_dead_subscriber_is_dropped_and_the_others_still_get_events(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    doomed, survivor = Recorder.start(), Recorder.start()
    doomed_id = subscribe(registry, doomed)
    subscribe(registry, survivor)
    doomed.stop()

    with caplog.at_level(logging.INFO, logger="actors.listeners.registry"):
        up = feed.up(make_member(1))
        feed.sync()

    assert received(survivor) == (MemberUp(1, up),)
    assert doomed_id in caplog.text
    assert registry.ask(RemoveListener(doomed_id), timeout=TIMEOUT) is False


@pytest.mark.parametrize("initial_state", list(InitialState))
def test_a_dead_subscriber_told_to_subscribe_does_not_stop_the_registry(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    initial_state: InitialState,
) -> None:
    feed.up(make_member(1))
    dead = Recorder.start()
    dead.stop()

    registry.tell(Subscribe(dead, initial_state=initial_state))
    survivor = Recorder.start()
    subscribe(registry, survivor)
    later = feed.up(make_member(2))
    feed.sync()

    assert registry.is_alive()
    assert received(survivor) == (MemberUp(2, later),)


@pytest.mark.parametrize(
    ("build", "error", "text"),
    [
        (lambda: Subscribe("not an actor"), TypeError, "pykka ActorRef"),
        (lambda: Subscribe(None, events=(MemberUp,)), TypeError, "pykka ActorRef"),
        (lambda: Unsubscribe(42), TypeError, "pykka ActorRef"),
        (
            lambda: AddCallbackListener(member_added="print"),
            TypeError,
            "member_added must be callable",
        ),
        (
            lambda: AddCallbackListener(member_removed=1),
            TypeError,
            "member_removed must be callable",
        ),
        (lambda: AddCallbackListener(fire_for_existing="yes"), TypeError, "fire_for_existing"),
        (lambda: RemoveListener(["an", "id"]), TypeError, "registration_id must be a str"),
    ],
)
def test_bad_registrations_fail_when_built_and_never_reach_the_registry(
    registry: pykka.ActorRef[Any], build: Callable[[], Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        registry.tell(build())
    assert registry.ask(GetClusterState(), timeout=TIMEOUT) == CurrentClusterState(version=0)


@pytest.mark.parametrize(
    ("events", "error", "text"),
    [
        ((), ValueError, "non-empty tuple"),
        ([MemberUp], ValueError, "non-empty tuple"),
        ((MemberUp, int), TypeError, "ClusterEvent subclasses"),
        ((MemberUp(1, build_member(1)),), TypeError, "ClusterEvent subclasses"),
    ],
)
def test_bad_event_types_are_refused(
    registry: pykka.ActorRef[Any], events: Any, error: type[Exception], text: str
) -> None:
    recorder = Recorder.start()
    with pytest.raises(error, match=text):
        registry.ask(Subscribe(recorder, events=events), timeout=TIMEOUT)


def test_bad_initial_state_is_refused(registry: pykka.ActorRef[Any]) -> None:
    recorder = Recorder.start()
    with pytest.raises(TypeError, match="initial_state must be an InitialState"):
        registry.ask(
            Subscribe(recorder, initial_state="events"),  # type: ignore[arg-type]
            timeout=TIMEOUT,
        )


def test_get_members_are_the_up_members_in_age_order_filtered(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    data = feed.up(make_member(3))
    lite = feed.up(make_member(1, lite=True))
    joining = make_member(2)
    feed.change((MemberJoined(3, joining),), (data, lite, joining))

    def ask(selector: Any) -> Any:
        return registry.ask(GetMembers(selector), timeout=TIMEOUT)

    assert ask(None) == (data, lite)
    assert ask(DataMemberSelector()) == (data,)
    assert ask(LiteMemberSelector()) == (lite,)
    with pytest.raises(TypeError, match="selector"):
        ask(42)


@pytest.mark.parametrize("send", ["tell", "ask"])
@pytest.mark.parametrize(
    "selector",
    [raising_selector, DataButRaising(), lambda member: threading.Event().wait()],
    ids=["raising", "raising-subclass", "hanging"],
)
def test_a_selector_function_never_runs_in_the_registry(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    send: str,
    selector: Any,
) -> None:
    member = feed.up(make_member(1))

    with pytest.raises(TypeError, match="an actor never runs a caller's function"):
        getattr(registry, send)(GetMembers(selector))

    assert registry.is_alive()
    assert registry.ask(GetMembers(), timeout=TIMEOUT) == (member,)


def test_a_selector_function_that_bypassed_the_check_is_refused_not_run(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    member = feed.up(make_member(1))
    called = threading.Event()

    def selector(member: Member) -> bool:
        called.set()
        return True

    with pytest.raises(TypeError, match="an actor never runs a caller's function"):
        registry.ask(UncheckedGetMembers(selector), timeout=TIMEOUT)  # type: ignore[arg-type]

    assert not called.is_set()
    assert registry.ask(GetMembers(), timeout=TIMEOUT) == (member,)


def test_cluster_state_follows_the_changes(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    assert registry.ask(GetClusterState(), timeout=TIMEOUT) == CurrentClusterState(version=0)
    member = feed.up(make_member(1))
    feed.remove(member)

    state = registry.ask(GetClusterState(), timeout=TIMEOUT)

    assert state == CurrentClusterState(version=2, members=())


def test_member_events_carry_the_member_as_of_the_event(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = Recorder.start()
    subscribe(registry, recorder, events=(MemberEvent,))
    feed.remove(feed.up(make_member(1)))
    feed.sync()

    up_event, removed_event = received(recorder)

    assert isinstance(up_event, MemberUp)
    assert up_event.member.status is MemberStatus.UP
    assert isinstance(removed_event, MemberRemoved)
    assert removed_event.member.status is MemberStatus.REMOVED
    assert removed_event.previous_status is MemberStatus.UP


def test_a_dead_callback_runner_is_logged_and_subscribers_still_get_events(
    registry: pykka.ActorRef[Any],
    callback_runner: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder.start()
    subscribe(registry, recorder)
    registry.ask(AddCallbackListener(member_added=print), timeout=TIMEOUT)
    callback_runner.stop()

    with caplog.at_level(logging.ERROR, logger="actors.listeners.registry"):
        up = feed.up(make_member(1))
        feed.sync()

    assert "Callback runner is dead: 1 listener calls not made" in caplog.text
    assert received(recorder) == (MemberUp(1, up),)
