"""EventRecorder: watchers get every later event once; a caller's predicate runs in the caller's
thread, and an on_event that raises never stops the recorder."""

from __future__ import annotations

import logging
from typing import Any

import pykka
import pytest
from cluster_helpers import poll_until
from conftest import MakeMember, MembershipFeed

from actors.listeners.recorder import EventRecorder, record_events, wait_until
from messages.events import ClusterEvent, MemberUp
from messages.local.commands import GetEvents, Subscribe, UnwatchEvents, WatchEvents

TIMEOUT = 10


def watchers_left() -> list[pykka.ActorRef[Any]]:
    """The watcher actors that ``wait_until`` started and has not stopped."""
    return pykka.ActorRegistry.get_by_class_name("_EventQueue")


def test_a_raising_predicate_raises_in_the_caller_and_the_recorder_records_on(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = record_events(registry)

    def explode(events: tuple[ClusterEvent, ...]) -> bool:
        raise ZeroDivisionError("predicate failed")

    with pytest.raises(ZeroDivisionError, match="predicate failed"):
        wait_until(recorder, explode, TIMEOUT)
    up = feed.up(make_member(1))

    assert wait_until(recorder, lambda events: len(events) == 1, TIMEOUT) == (MemberUp(1, up),)
    assert watchers_left() == []


def test_wait_until_returns_the_events_at_the_first_moment_the_predicate_holds(
    make_member: MakeMember,
) -> None:
    recorder = EventRecorder.start()
    first, second, third = (MemberUp(n, make_member(n, up_number=n)) for n in (1, 2, 3))
    recorder.tell(first)

    def two_or_more(events: tuple[ClusterEvent, ...]) -> bool:
        if len(events) == 1:  # the events so far: two more arrive while the caller waits
            recorder.tell(second)
            recorder.tell(third)
        return len(events) >= 2

    assert wait_until(recorder, two_or_more, TIMEOUT) == (first, second)
    assert wait_until(recorder, two_or_more, TIMEOUT) == (first, second, third)


def test_wait_until_times_out_with_pykka_timeout_and_stops_its_watcher(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = record_events(registry)

    with pytest.raises(pykka.Timeout, match=r"not reached within 0\.2 s \(0 events\)"):
        wait_until(recorder, lambda events: len(events) > 0, 0.2)

    assert watchers_left() == []
    up = feed.up(make_member(1))
    assert wait_until(recorder, lambda events: len(events) == 1, TIMEOUT) == (MemberUp(1, up),)


def test_a_watcher_gets_every_later_event_once_until_it_unwatches(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = record_events(registry)
    first = feed.up(make_member(1))
    wait_until(recorder, lambda events: len(events) == 1, TIMEOUT)
    watcher, stopped = EventRecorder.start(), EventRecorder.start()

    assert recorder.ask(WatchEvents(watcher), timeout=TIMEOUT) == (MemberUp(1, first),)
    recorder.ask(WatchEvents(stopped), timeout=TIMEOUT)
    stopped.stop()  # dropped by the recorder when it next tells it an event
    second = feed.up(make_member(2))
    assert wait_until(watcher, lambda events: len(events) == 1, TIMEOUT) == (MemberUp(2, second),)
    recorder.tell(UnwatchEvents(watcher))
    third = feed.up(make_member(3))

    assert wait_until(recorder, lambda events: len(events) == 3, TIMEOUT)[-1] == MemberUp(3, third)
    assert watcher.ask(GetEvents(), timeout=TIMEOUT) == (MemberUp(2, second),)


def test_a_raising_on_event_is_logged_and_the_recorder_records_on(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(event: ClusterEvent) -> None:
        raise RuntimeError(f"on_event failed on {event}")

    recorder = EventRecorder.start(explode)
    with caplog.at_level(logging.ERROR, logger="actors.listeners.recorder"):
        registry.ask(Subscribe(recorder), timeout=TIMEOUT)
        first, second = feed.up(make_member(1)), feed.up(make_member(2))
        events = wait_until(recorder, lambda events: len(events) == 2, TIMEOUT)

    assert events == (MemberUp(1, first), MemberUp(2, second))
    assert recorder.ask(GetEvents(), timeout=TIMEOUT) == events
    assert caplog.text.count("on_event raised") == 2


def test_recording_from_a_stopped_registry_raises_and_leaves_no_recorder() -> None:
    """A node removed while its start returned has stopped its registry: the CLI then records
    nothing, and must not leave a recorder behind."""

    class Stopped(pykka.ThreadingActor):
        pass

    registry = Stopped.start()
    registry.stop()
    before = set(pykka.ActorRegistry.get_by_class(EventRecorder))
    with pytest.raises(pykka.ActorDeadError):
        record_events(registry)
    poll_until(
        lambda: set(pykka.ActorRegistry.get_by_class(EventRecorder)) <= before,
        "the recorder of the failed subscription to stop",
    )
