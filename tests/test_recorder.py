"""EventRecorder: a caller's predicate or on_event that raises never stops the recorder."""

from __future__ import annotations

import logging
from typing import Any

import pykka
import pytest
from conftest import MakeMember, MembershipFeed

from actors.recorder import EventRecorder, record_events, wait_until
from messages.commands import GetEvents, Subscribe, WaitUntil
from messages.events import ClusterEvent, MemberUp

TIMEOUT = 10


def test_a_raising_predicate_fails_its_wait_and_the_recorder_records_on(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    recorder = record_events(registry)

    def explode(events: tuple[ClusterEvent, ...]) -> bool:
        raise ZeroDivisionError("predicate failed")

    with pytest.raises(ZeroDivisionError, match="predicate failed"):
        wait_until(recorder, explode, TIMEOUT)
    done: pykka.Future[tuple[ClusterEvent, ...]] = pykka.ThreadingFuture()
    recorder.tell(WaitUntil(explode, done))  # told: nobody waits on the tell itself
    up = feed.up(make_member(1))

    assert wait_until(recorder, lambda events: len(events) == 1, TIMEOUT) == (MemberUp(1, up),)
    with pytest.raises(ZeroDivisionError):
        done.get(timeout=TIMEOUT)


def test_a_raising_on_event_is_logged_and_the_recorder_records_on(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(event: ClusterEvent) -> None:
        raise RuntimeError(f"on_event failed on {event}")

    recorder = EventRecorder.start(explode)
    with caplog.at_level(logging.ERROR, logger="actors.recorder"):
        registry.ask(Subscribe(recorder), timeout=TIMEOUT)
        first, second = feed.up(make_member(1)), feed.up(make_member(2))
        events = wait_until(recorder, lambda events: len(events) == 2, TIMEOUT)

    assert events == (MemberUp(1, first), MemberUp(2, second))
    assert recorder.ask(GetEvents(), timeout=TIMEOUT) == events
    assert caplog.text.count("on_event raised") == 2
