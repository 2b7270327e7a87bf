"""Pure helpers: the replay of a cluster state as events, and the load-balancing strategies."""

from __future__ import annotations

import random

import pytest
from conftest import build_member
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.events import (
    CurrentClusterState,
    LeaderChanged,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberUnreachable,
    MemberUp,
)
from messages.member import Member, MemberStatus
from messages.membership.replay import replay_events
from messages.messaging.balancing import RandomStrategy, RoundRobinStrategy, strategy_named

LIVE_STATUSES = [s for s in MemberStatus if s is not MemberStatus.REMOVED]


@st.composite
def cluster_states(draw: st.DrawFn) -> CurrentClusterState:
    statuses = draw(st.lists(st.sampled_from(LIVE_STATUSES), max_size=8))
    members = []
    for port, status in enumerate(statuses, start=1):
        was_up = status is not MemberStatus.JOINING and (
            status is MemberStatus.UP or draw(st.booleans())
        )
        members.append(build_member(port, up_number=port if was_up else 0, status=status))
    unreachable = (
        draw(st.frozensets(st.sampled_from([m.uuid for m in members]))) if members else frozenset()
    )
    leader = draw(st.none() | st.sampled_from([m.address for m in members])) if members else None
    return CurrentClusterState(
        version=draw(st.integers(0, 1000)),
        members=tuple(members),
        unreachable=unreachable,
        leader=leader,
    )


def test_replay_of_a_mixed_state_in_order() -> None:
    joining = build_member(1)
    up = build_member(2, up_number=1)
    leaving = build_member(3, up_number=2, status=MemberStatus.LEAVING)
    downed_before_up = build_member(4, status=MemberStatus.DOWN)
    exiting = build_member(5, up_number=3, status=MemberStatus.EXITING)
    state = CurrentClusterState(
        version=7,
        members=(joining, up, leaving, downed_before_up, exiting),
        unreachable=frozenset({downed_before_up.uuid}),
        leader=up.address,
    )

    assert replay_events(state) == (
        MemberJoined(version=7, member=joining),
        MemberUp(version=7, member=up),
        MemberUp(version=7, member=leaving),
        MemberLeft(version=7, member=leaving),
        MemberDowned(version=7, member=downed_before_up),
        MemberUp(version=7, member=exiting),
        MemberExited(version=7, member=exiting),
        MemberUnreachable(version=7, member=downed_before_up),
        LeaderChanged(version=7, leader=up.address),
    )


def test_replay_of_the_empty_state_is_empty() -> None:
    assert replay_events(CurrentClusterState(version=0)) == ()


@settings(max_examples=60, deadline=None)
@given(cluster_states())
def test_replay_laws(state: CurrentClusterState) -> None:
    events = replay_events(state)

    assert all(event.version == state.version for event in events)
    assert [e.member for e in events if isinstance(e, MemberUp)] == list(state.up_members)
    assert [e.member for e in events if isinstance(e, MemberJoined)] == [
        m for m in state.members if m.status is MemberStatus.JOINING
    ]
    assert {e.member.uuid for e in events if isinstance(e, MemberUnreachable)} == state.unreachable
    leader_events = [e for e in events if isinstance(e, LeaderChanged)]
    assert leader_events == (
        [] if state.leader is None else [LeaderChanged(state.version, state.leader)]
    )


def members_of(count: int) -> tuple[Member, ...]:
    return tuple(build_member(port, up_number=port) for port in range(1, count + 1))


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 10), start=st.integers(0, 1000), calls=st.integers(0, 50))
def test_round_robin_rotates_exactly(count: int, start: int, calls: int) -> None:
    members = members_of(count)
    strategy = RoundRobinStrategy(start)

    picked = [strategy.next(members) for _ in range(calls)]

    assert picked == [members[(start + k) % count] for k in range(calls)]


def test_round_robin_with_random_start_still_rotates() -> None:
    members = members_of(4)
    strategy = RoundRobinStrategy.starting_anywhere(random.Random(3))

    picked = [strategy.next(members) for _ in range(8)]

    first = members.index(picked[0])
    assert picked == [members[(first + k) % 4] for k in range(8)]


def test_round_robin_keeps_turning_when_members_change() -> None:
    strategy = RoundRobinStrategy(0)
    three = members_of(3)

    assert [strategy.next(three) for _ in range(2)] == [three[0], three[1]]
    assert strategy.next(three[:2]) == three[0]  # counter 2 modulo 2


@pytest.mark.parametrize("strategy", [RoundRobinStrategy(0), RandomStrategy(random.Random(1))])
def test_no_member_gives_none(strategy: RoundRobinStrategy | RandomStrategy) -> None:
    assert strategy.next(()) is None


def test_round_robin_rejects_a_non_int_start() -> None:
    with pytest.raises(TypeError, match="start must be an int"):
        RoundRobinStrategy("1")  # type: ignore[arg-type]


def test_random_picks_among_the_members_and_reaches_each() -> None:
    members = members_of(3)
    strategy = RandomStrategy(random.Random(42))

    picked = [strategy.next(members) for _ in range(200)]

    assert set(picked) == set(members)


def test_random_is_reproducible_with_a_seeded_rng() -> None:
    members = members_of(5)
    first = RandomStrategy(random.Random(7))
    second = RandomStrategy(random.Random(7))

    assert [first.next(members) for _ in range(20)] == [second.next(members) for _ in range(20)]


def test_strategy_named_draws_only_from_the_given_rng() -> None:
    members = members_of(5)
    assert isinstance(strategy_named("random", random.Random(0)), RandomStrategy)
    first, second = (strategy_named("round_robin", random.Random(5)) for _ in range(2))

    assert isinstance(first, RoundRobinStrategy)
    assert [first.next(members) for _ in range(6)] == [second.next(members) for _ in range(6)]


def test_single_member_is_always_chosen() -> None:
    only = members_of(1)
    assert RandomStrategy(random.Random(0)).next(only) == only[0]
    assert RoundRobinStrategy.starting_anywhere(random.Random(0)).next(only) == only[0]
