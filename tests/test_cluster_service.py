"""ClusterService: the Hazelcast-style facade, its listeners and the callback runner."""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from cluster_helpers import Received
from conftest import MakeMember, MembershipFeed, build_member

from actors.listeners.cluster_service import ClusterService
from messages.address import Address
from messages.events import MemberJoined, MemberRemoved
from messages.local.commands import RunCallbacks
from messages.member import DataMemberSelector, LiteMemberSelector, Member, MemberStatus

TIMEOUT = 10


@pytest.fixture
def service(
    registry: pykka.ActorRef[Any], callback_runner: pykka.ActorRef[Any]
) -> Iterator[ClusterService]:
    cluster_service = ClusterService(registry, callback_runner, ask_timeout=TIMEOUT)
    cluster_service.start()
    yield cluster_service
    cluster_service.shutdown()


@pytest.fixture
def drain(feed: MembershipFeed, callback_runner: pykka.ActorRef[Any]) -> Any:
    """``drain()``: wait until every callback of the changes fed so far has run."""

    def wait_until_callbacks_ran() -> None:
        feed.sync()
        callback_runner.ask(RunCallbacks(()), timeout=TIMEOUT)

    return wait_until_callbacks_ran


def test_members_are_the_up_members_oldest_first(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    assert service.size() == 0
    first, second, third = (feed.up(make_member(port)) for port in (3, 1, 2))
    joining = make_member(4)
    feed.change((MemberJoined(4, joining),), (*feed.members, joining))
    feed.remove(second)
    feed.sync()

    assert service.members == [first, third]
    assert service.get_member_list() == [first, third]
    assert service.get_members() == [first, third]
    assert service.size() == 2


def test_get_members_with_selectors(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    data = feed.up(make_member(1))
    lite = feed.up(make_member(2, lite=True))
    feed.sync()

    assert service.get_members(DataMemberSelector()) == [data]
    assert service.get_members(LiteMemberSelector()) == [lite]
    assert service.get_members(lambda member: member.address.port == 2) == [lite]
    assert service.get_members(None) == [data, lite]
    with pytest.raises(TypeError, match="selector"):
        service.get_members("lite")  # type: ignore[arg-type]


def test_get_member_by_uuid(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    member = feed.up(make_member(1))
    feed.sync()

    assert service.get_member_by_uuid(member.uuid) == member
    assert service.get_member_by_uuid(uuid.UUID(member.uuid)) == member
    assert service.get_member_by_uuid(str(uuid.uuid4())) is None
    with pytest.raises(TypeError, match=r"str or uuid\.UUID"):
        service.get_member_by_uuid(42)  # type: ignore[arg-type]


def test_get_member_by_address(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    member = feed.up(make_member(5702))
    feed.sync()

    assert service.get_member_by_address(Address("127.0.0.1", 5702)) == member
    assert service.get_member_by_address("127.0.0.1:5702") == member
    assert service.get_member_by_address("127.0.0.1:5703") is None
    with pytest.raises(ValueError, match="port must be a number"):
        service.get_member_by_address("127.0.0.1:http")


def test_listener_gets_added_and_removed_members(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, drain: Any
) -> None:
    added, removed = Received(), Received()
    service.add_listener(member_added=added, member_removed=removed)

    member = feed.up(make_member(1))
    feed.remove(member)
    drain()

    assert added.messages == [member]
    assert [m.uuid for m in removed.messages] == [member.uuid]
    assert removed.messages[0].status is MemberStatus.REMOVED


def test_removal_of_a_member_never_added_is_not_reported(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, drain: Any
) -> None:
    removed = Received()
    service.add_listener(member_removed=removed)
    joining = make_member(1)
    feed.change((MemberJoined(1, joining),), (joining,))

    feed.change((MemberRemoved(2, joining.with_status(MemberStatus.REMOVED)),), ())
    drain()

    assert removed.messages == []


def test_same_callback_twice_is_called_twice(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, drain: Any
) -> None:
    added = Received()
    first = service.add_listener(member_added=added)
    second = service.add_listener(member_added=added)

    member = feed.up(make_member(1))
    drain()

    assert first != second
    assert added.messages == [member, member]


def test_remove_listener_true_then_false_and_no_more_calls(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, drain: Any
) -> None:
    added = Received()
    registration_id = service.add_listener(member_added=added)

    assert service.remove_listener(registration_id) is True
    assert service.remove_listener(registration_id) is False
    feed.up(make_member(1))
    drain()
    assert added.messages == []


def test_fire_for_existing_calls_member_added_for_current_members(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    existing = [feed.up(make_member(port)) for port in (1, 2)]
    feed.sync()
    added = Received()

    service.add_listener(member_added=added, fire_for_existing=True)

    assert added.wait_count(2) == existing


def test_fire_for_existing_has_run_for_every_member_when_add_listener_returns(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    """As in Hazelcast, whose tests assert right after the call: no waiting for the calls."""
    existing = [feed.up(make_member(port)) for port in (3, 1, 2)]
    feed.sync()
    for _ in range(50):
        added: list[Member] = []

        registration_id = service.add_listener(member_added=added.append, fire_for_existing=True)

        assert added == existing  # all of them, oldest first, already
        assert service.remove_listener(registration_id)


def test_lists_where_hazelcast_returns_lists(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    assert service.get_members(DataMemberSelector()) == []
    assert service.members == []
    assert service.get_member_list() == []
    member = feed.up(make_member(1))
    feed.sync()
    members = service.get_members()
    members.append(member)  # a fresh list: changing it changes nothing else
    assert service.get_member_list() == [member]
    assert type(service.members) is list


def test_a_raising_callback_is_logged_and_the_others_still_run(
    service: ClusterService,
    feed: MembershipFeed,
    make_member: MakeMember,
    drain: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(member: Member) -> None:
        raise RuntimeError(f"boom on {member.address}")

    before, after = Received(), Received()
    service.add_listener(member_added=before)
    exploding_id = service.add_listener(member_added=explode, member_removed=explode)
    service.add_listener(member_added=after)

    with caplog.at_level(logging.ERROR, logger="actors.listeners.callbacks"):
        first = feed.up(make_member(1))
        second = feed.up(make_member(2))
        drain()

    assert before.messages == [first, second]
    assert after.messages == [first, second]
    failures = [r for r in caplog.records if r.name == "actors.listeners.callbacks"]
    assert len(failures) == 2
    assert all(exploding_id in r.getMessage() and r.exc_info for r in failures)


def test_a_raising_selector_raises_in_the_caller_and_the_registry_serves_on(
    service: ClusterService,
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
) -> None:
    member = feed.up(make_member(1))

    def explode(member: Member) -> bool:
        raise ZeroDivisionError(f"selector failed on {member.address}")

    with pytest.raises(ZeroDivisionError, match=r"selector failed on 127\.0\.0\.1:1"):
        service.get_members(explode)

    assert registry.is_alive()
    assert service.get_members() == [member]


def test_a_callback_that_exits_stops_neither_the_runner_nor_the_registry(
    service: ClusterService,
    registry: pykka.ActorRef[Any],
    callback_runner: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    drain: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def leave(member: Member) -> None:
        sys.exit(f"listener quits on {member.address}")

    after = Received()
    service.add_listener(member_added=leave)
    service.add_listener(member_added=after)

    with caplog.at_level(logging.ERROR, logger="actors.listeners.callbacks"):
        first = feed.up(make_member(1))
        second = feed.up(make_member(2))
        drain()

    assert registry.is_alive()
    assert callback_runner.is_alive()
    assert after.messages == [first, second]
    assert caplog.text.count("SystemExit: listener quits on 127.0.0.1") == 2


def test_a_hanging_callback_holds_up_only_the_callbacks(
    service: ClusterService,
    registry: pykka.ActorRef[Any],
    callback_runner: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    drain: Any,
) -> None:
    # to see fire_for_existing give up
    impatient = ClusterService(registry, callback_runner, ask_timeout=2.0)
    impatient.start()
    release, entered = threading.Event(), threading.Event()

    def hang(member: Member) -> None:
        entered.set()
        release.wait(TIMEOUT)

    later = Received()
    service.add_listener(member_added=hang)
    first = feed.up(make_member(1))
    assert entered.wait(TIMEOUT)
    try:
        second = feed.up(make_member(2))
        assert service.get_members() == [first, second]
        later_id = service.add_listener(member_added=later)
        assert service.remove_listener(later_id) is True
        with pytest.raises(TimeoutError, match="member_added did not finish"):
            impatient.add_listener(member_added=later, fire_for_existing=True)
    finally:
        release.set()
    drain()

    assert later.messages == [first, second]


def test_a_callback_may_add_and_remove_listeners(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, drain: Any
) -> None:
    inner = Received()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def reregister(member: Member) -> None:
        outcome["inner_id"] = service.add_listener(member_added=inner, fire_for_existing=True)
        outcome["removed_self"] = service.remove_listener(outcome["outer_id"])
        outcome["removed_again"] = service.remove_listener(outcome["outer_id"])
        done.set()

    outcome["outer_id"] = service.add_listener(member_added=reregister)
    first = feed.up(make_member(1))
    assert done.wait(TIMEOUT)
    second = feed.up(make_member(2))
    drain()

    assert outcome["removed_self"] is True
    assert outcome["removed_again"] is False
    assert inner.messages == [first, second]
    assert service.remove_listener(outcome["inner_id"]) is True


def test_fire_for_existing_is_atomic_with_concurrent_changes(
    service: ClusterService, feed: MembershipFeed, drain: Any
) -> None:
    """Listeners added from three threads between rounds of changes each see every member once."""
    rounds, per_round, threads = 12, 4, 3
    produced = [threading.Event() for _ in range(rounds)]
    registered = [threading.Event() for _ in range(rounds)]
    listeners: dict[int, Received] = {}

    def produce() -> None:
        for round_number in range(rounds):
            for index in range(per_round):
                feed.up(build_member(round_number * per_round + index + 1))
            produced[round_number].set()
            registered[round_number].wait(TIMEOUT)

    def add_listener_every_third_round(first: int) -> None:
        for round_number in range(first, rounds, threads):
            if round_number > 0:  # then race this round's changes
                produced[round_number - 1].wait(TIMEOUT)
            listeners[round_number] = Received()
            service.add_listener(member_added=listeners[round_number], fire_for_existing=True)
            registered[round_number].set()

    workers = [threading.Thread(target=produce)] + [
        threading.Thread(target=add_listener_every_third_round, args=(first,))
        for first in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    drain()

    everyone = [build_member(port).uuid for port in range(1, rounds * per_round + 1)]
    assert sorted(listeners) == list(range(rounds))
    for calls in listeners.values():
        assert [member.uuid for member in calls.messages] == everyone


def test_bad_arguments_are_refused(
    service: ClusterService, callback_runner: pykka.ActorRef[Any]
) -> None:
    with pytest.raises(TypeError, match="member_added must be callable"):
        service.add_listener(member_added="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="member_removed must be callable"):
        service.add_listener(member_removed=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fire_for_existing must be a bool"):
        service.add_listener(fire_for_existing="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registration_id must be a str"):
        service.remove_listener(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pykka ActorRef"):
        ClusterService("registry", callback_runner)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callbacks must be a pykka ActorRef"):
        ClusterService(service.listeners, "runner")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ask_timeout must be positive"):
        ClusterService(service.listeners, callback_runner, ask_timeout=0)


def test_calls_before_start_and_after_shutdown_raise(
    registry: pykka.ActorRef[Any], callback_runner: pykka.ActorRef[Any]
) -> None:
    service = ClusterService(registry, callback_runner)
    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        service.size()

    service.start()
    service.start()
    assert service.size() == 0
    service.shutdown()
    service.shutdown()

    for call in (service.size, service.get_members, lambda: service.listeners):
        with pytest.raises(RuntimeError, match="shut down"):
            call()
    with pytest.raises(RuntimeError, match="cannot be started again"):
        service.start()


def test_a_stopped_registry_gives_a_clear_error(
    registry: pykka.ActorRef[Any], callback_runner: pykka.ActorRef[Any]
) -> None:
    service = ClusterService(registry, callback_runner)
    service.start()
    registry.stop()

    with pytest.raises(RuntimeError, match="not running"):
        service.size()
    with pytest.raises(RuntimeError, match="not running"):
        ClusterService(registry, callback_runner).start()


def test_fire_for_existing_with_a_dead_runner_returns_and_the_registry_logs_the_lost_calls(
    service: ClusterService,
    callback_runner: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed.up(make_member(1))
    feed.sync()
    callback_runner.stop()

    with caplog.at_level(logging.ERROR, logger="actors.listeners.registry"):
        registration_id = service.add_listener(member_added=print, fire_for_existing=True)

    assert service.remove_listener(registration_id) is True
    assert "Callback runner is dead: 1 listener calls not made" in caplog.text
