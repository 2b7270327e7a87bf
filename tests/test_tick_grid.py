"""A member's periodic ticks fall on the wall clock's grid of their period (``on_grid``), so the
members of a cluster tick together and each reads its peers' heartbeats in one wake-up."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pykka
import pytest
from cluster_helpers import STEP_TIMEOUT, Received, Sink
from hypothesis import given
from hypothesis import strategies as st

from actors.membership import MembershipActor
from actors.transport.loop import IoLoop
from actors.transport.timers import Timer, on_grid
from messages import Address
from messages.member import Member
from messages.membership.effects import GossipTick, HeartbeatTick, JoinCluster
from messages.settings import Settings

periods = st.floats(min_value=0.01, max_value=60.0)
walls = st.floats(min_value=1.6e9, max_value=2.0e9)


@given(periods, walls)
def test_a_tick_lands_on_the_nearest_multiple_of_its_period(delay: float, wall: float) -> None:
    ticked = on_grid(delay, wall)
    at = wall + ticked
    assert abs(at / delay - round(at / delay)) < 1e-9 + 1e-14 * wall / delay  # float rounding
    assert delay / 2 - 1e-6 <= ticked <= 3 * delay / 2 + 1e-6


@given(periods, st.integers(min_value=1, max_value=10**6))
def test_a_tick_set_from_the_grid_keeps_its_period(delay: float, multiple: int) -> None:
    assert on_grid(delay, multiple * delay) == pytest.approx(delay, rel=1e-6, abs=1e-6)


def test_a_tick_at_once_stays_at_once() -> None:
    assert on_grid(0.0, 1.7e9 + 0.3) == 0.0


class _Scheduler:
    """Stands in for the I/O loop: notes when each tick was set and for how long."""

    def __init__(self) -> None:
        self.set: list[tuple[float, float, object]] = []  # (wall clock, delay, message)
        self.condition = threading.Condition()

    def call_later(self, delay: float, target: pykka.ActorRef[Any], message: object) -> Timer:
        with self.condition:
            self.set.append((time.time(), delay, message))
            self.condition.notify_all()
        return Timer(lambda: False, None)

    def answer_heartbeats(self, answerer: object) -> None:
        pass


def _ticks(
    scheduler: _Scheduler, count: int, kind: type[object]
) -> list[tuple[float, float, object]]:
    """The first ``count`` ticks of type ``kind`` the actor has set (waits for them)."""
    with scheduler.condition:
        assert scheduler.condition.wait_for(
            lambda: sum(isinstance(m, kind) for _, _, m in scheduler.set) >= count, STEP_TIMEOUT
        )
        return [tick for tick in scheduler.set if isinstance(tick[2], kind)][:count]


def _on_the_grid(wall: float, delay: float, period: float) -> bool:
    phase = (wall + delay) / period
    return abs(phase - round(phase)) < 0.01 and period / 2 - 0.01 <= delay <= 1.5 * period + 0.01


def test_the_heartbeat_and_a_settled_members_gossip_tick_on_the_grid_news_at_once() -> None:
    settings = Settings(heartbeat_interval=0.5, gossip_interval=0.75)
    scheduler = _Scheduler()
    sinks = [Sink.start(Received()) for _ in range(2)]
    member = Member.create(Address("127.0.0.1", 5701))
    actor = MembershipActor.start(
        member, sinks[0], settings, cast(IoLoop, scheduler), transport=sinks[1]
    )
    try:
        actor.tell(JoinCluster(seeds=()))  # forms a cluster of its own: its ticks start
        (heartbeat,) = _ticks(scheduler, 1, HeartbeatTick)
        (first,) = _ticks(scheduler, 1, GossipTick)
        actor.tell(GossipTick())  # a lone member is settled: its next tick is a slow one
        settled = _ticks(scheduler, 2, GossipTick)[1]
    finally:
        actor.stop()
        for sink in sinks:
            sink.stop()
    assert _on_the_grid(heartbeat[0], heartbeat[1], settings.heartbeat_interval), heartbeat
    assert _on_the_grid(settled[0], settled[1], settings.gossip_interval), settled
    # the first gossip tick of a new member is a fast one: it spreads news, and keeps its phase
    assert first[1] == settings.gossip_interval / settings.fast_gossip_factor
