"""LoadBalancerActor and the RandomLoadBalancer / RoundRobinLoadBalancer facades."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from conftest import DataButRaising, MakeMember, MembershipFeed, raising_selector

from actors.listeners.cluster_service import ClusterService
from actors.listeners.load_balancer import (
    LoadBalancerActor,
    RandomLoadBalancer,
    RoundRobinLoadBalancer,
)
from messages.local.commands import GetMembers, NextMember
from messages.member import DataMemberSelector, LiteMemberSelector, Member, select_members
from messages.messaging.balancing import RoundRobinStrategy

TIMEOUT = 10
BALANCERS = [RandomLoadBalancer, RoundRobinLoadBalancer]


@pytest.fixture
def service(
    registry: pykka.ActorRef[Any], callback_runner: pykka.ActorRef[Any]
) -> Iterator[ClusterService]:
    cluster_service = ClusterService(registry, callback_runner, ask_timeout=TIMEOUT)
    cluster_service.start()
    yield cluster_service
    cluster_service.shutdown()


def up_members(feed: MembershipFeed, count: int, make_member: MakeMember) -> tuple[Member, ...]:
    members = tuple(feed.up(make_member(port)) for port in range(1, count + 1))
    feed.sync()
    return members


@pytest.mark.parametrize("balancer_type", BALANCERS)
def test_no_member_gives_none(service: ClusterService, balancer_type: type[Any]) -> None:
    balancer = balancer_type(service)

    assert balancer.next() is None
    assert balancer.next_address() is None


@pytest.mark.parametrize("balancer_type", BALANCERS)
def test_one_member_is_always_chosen(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, balancer_type: type[Any]
) -> None:
    (only,) = up_members(feed, 1, make_member)
    balancer = balancer_type(service)

    assert [balancer.next() for _ in range(5)] == [only] * 5
    assert balancer.next_address() == only.address


def test_round_robin_takes_the_existing_members_in_turn(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    members = up_members(feed, 4, make_member)
    balancer = RoundRobinLoadBalancer(service)

    picked = [balancer.next() for _ in range(12)]

    first = members.index(picked[0])
    assert picked == [members[(first + k) % 4] for k in range(12)]


def test_random_picks_among_the_members(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    members = up_members(feed, 3, make_member)
    balancer = RandomLoadBalancer(service)

    picked = {balancer.next() for _ in range(300)}

    assert picked == set(members)


@pytest.mark.parametrize("balancer_type", BALANCERS)
def test_follows_members_coming_and_going(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember, balancer_type: type[Any]
) -> None:
    balancer = balancer_type(service)
    first, second = feed.up(make_member(1)), feed.up(make_member(2))
    feed.remove(first)
    feed.sync()

    assert {balancer.next() for _ in range(20)} == {second}

    feed.remove(second)
    feed.sync()
    assert balancer.next() is None


def test_round_robin_is_exact_under_concurrent_callers(
    service: ClusterService, feed: MembershipFeed, make_member: MakeMember
) -> None:
    members = up_members(feed, 5, make_member)
    balancer = RoundRobinLoadBalancer(service)
    callers, calls_each = 8, 125
    picked: list[list[Member]] = [[] for _ in range(callers)]
    start = threading.Barrier(callers)

    def call(index: int) -> None:
        start.wait(TIMEOUT)
        picked[index].extend(balancer.next() for _ in range(calls_each))

    threads = [threading.Thread(target=call, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)

    counts = collections.Counter(m.uuid for calls in picked for m in calls)
    assert counts == {m.uuid: callers * calls_each // len(members) for m in members}


def test_actor_answers_with_selectors(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    data_one = feed.up(make_member(1))
    lite = feed.up(make_member(2, lite=True))
    data_two = feed.up(make_member(3))
    feed.sync()
    balancer = LoadBalancerActor.start(registry, RoundRobinStrategy(0))

    def ask(message: Any) -> Any:
        return balancer.ask(message, timeout=TIMEOUT)

    assert [ask(NextMember()) for _ in range(3)] == [data_one, lite, data_two]  # age order
    assert [ask(NextMember(LiteMemberSelector())) for _ in range(3)] == [lite] * 3
    assert [ask(NextMember(DataMemberSelector())) for _ in range(2)] == [data_one, data_two]
    with pytest.raises(TypeError, match="selector"):
        ask(NextMember(42))  # type: ignore[arg-type]


def test_actor_chooses_among_the_callers_selection(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    one, two, three = (feed.up(make_member(port)) for port in (1, 2, 3))
    feed.sync()
    balancer = LoadBalancerActor.start(registry, RoundRobinStrategy(0))

    def ask(message: Any) -> Any:
        return balancer.ask(message, timeout=TIMEOUT)

    members = registry.ask(GetMembers(), timeout=TIMEOUT)  # the list a caller selects from
    chosen = select_members(members, lambda member: member.address.port != 2)
    assert [ask(NextMember(among=chosen)) for _ in range(4)] == [one, three, one, three]
    assert ask(NextMember(among=())) is None
    feed.remove(three)
    feed.sync()
    assert [ask(NextMember(among=chosen)) for _ in range(2)] == [one, one]  # three is gone
    assert ask(NextMember(DataMemberSelector(), among=(two,))) == two
    assert ask(NextMember(LiteMemberSelector(), among=(two,))) is None
    with pytest.raises(TypeError, match="among must be a tuple of Member"):
        NextMember(among=[one])  # type: ignore[arg-type]


@pytest.mark.parametrize("send", ["tell", "ask"])
@pytest.mark.parametrize(
    "message",
    [
        lambda: NextMember(raising_selector),  # type: ignore[arg-type]
        lambda: NextMember(DataButRaising()),
        lambda: NextMember(lambda member: threading.Event().wait()),  # type: ignore[arg-type]
    ],
    ids=["next-raising", "next-raising-subclass", "next-hanging"],
)
def test_a_selector_function_never_runs_in_the_balancer(
    registry: pykka.ActorRef[Any],
    feed: MembershipFeed,
    make_member: MakeMember,
    send: str,
    message: Callable[[], Any],
) -> None:
    (only,) = up_members(feed, 1, make_member)
    balancer = LoadBalancerActor.start(registry, RoundRobinStrategy(0))

    with pytest.raises(TypeError, match="an actor never runs a caller's function"):
        getattr(balancer, send)(message())

    assert balancer.is_alive()
    assert balancer.ask(NextMember(), timeout=TIMEOUT) == only
    assert balancer.ask(NextMember(DataMemberSelector()), timeout=TIMEOUT) == only


def test_actor_keeps_members_in_age_order(
    registry: pykka.ActorRef[Any], feed: MembershipFeed, make_member: MakeMember
) -> None:
    balancer = LoadBalancerActor.start(registry, RoundRobinStrategy(0))
    assert balancer.ask(NextMember(), timeout=TIMEOUT) is None  # started: the rest are live
    members = [feed.up(make_member(port)) for port in (9, 3, 5)]
    feed.sync()

    assert [balancer.ask(NextMember(), timeout=TIMEOUT) for _ in range(3)] == members


def test_shutdown_stops_the_balancer(service: ClusterService) -> None:
    balancer = RoundRobinLoadBalancer(service)
    balancer.shutdown()

    with pytest.raises(RuntimeError, match="not running"):
        balancer.next()


def test_service_shutdown_stops_its_balancers(
    registry: pykka.ActorRef[Any], callback_runner: pykka.ActorRef[Any]
) -> None:
    service = ClusterService(registry, callback_runner)
    service.start()
    balancers = [RandomLoadBalancer(service), RoundRobinLoadBalancer(service)]

    service.shutdown()

    for balancer in balancers:
        with pytest.raises(RuntimeError, match="not running"):
            balancer.next_address()
    with pytest.raises(RuntimeError, match="shut down"):
        RoundRobinLoadBalancer(service)


def test_a_stopped_balancer_unsubscribes(
    service: ClusterService,
    feed: MembershipFeed,
    make_member: MakeMember,
    caplog: pytest.LogCaptureFixture,
) -> None:
    balancer = RoundRobinLoadBalancer(service)
    balancer.shutdown()

    with caplog.at_level(logging.INFO, logger="actors.listeners.registry"):
        feed.up(make_member(1))
        feed.sync()

    assert "Dropped listener" not in caplog.text
