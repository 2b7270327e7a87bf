"""Confirmation before accusation, step by step: relays, nacks, local health (no threads)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import msgspec

from messages.member import Member
from messages.membership.effects import (
    Downing,
    Dropped,
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    Input,
    ProbeTick,
    Reply,
    SendTo,
    SetTimer,
    Suspected,
    Unconfirmed,
)
from messages.membership.node import NodeState
from messages.membership.protocol import (
    Heartbeat,
    HeartbeatAck,
    ProbeRequest,
    ProbeResult,
    Suspect,
)
from messages.membership.publication import Publication
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.codec import WIRE_CODEC
from messages.wire.handshake import Identity, Role

T = TypeVar("T")
SETTINGS = Settings.lan()
CHECKING = SETTINGS.replace(answer_check=True)


def of_type(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [effect for effect in effects if isinstance(effect, kind)]


def sent(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [e.message for e in of_type(effects, SendTo) if isinstance(e.message, kind)]


class Observer:
    """The first member of a converged cluster of ``size``, driven by hand; every other member
    answers its heartbeats until ``silence``."""

    def __init__(self, size: int, settings: Settings = SETTINGS) -> None:
        state = converged_cluster(size)
        self.members: list[Member] = list(state.members)
        node = NodeState.create(self.members[0], settings, seed=1)
        published, _ = Publication().publish(state)
        self.node = dataclasses.replace(node, published=published, running=True, last_step=0.0)
        self.now = 0.0

    @property
    def uuid(self) -> str:
        return self.node.uuid

    def uuids(self) -> list[str]:
        return [m.uuid for m in self.members[1:]]

    def step(self, message: Input, at: float | None = None) -> tuple[Effect, ...]:
        self.now = self.now if at is None else at
        self.node, effects = step(self.node, message, self.now)
        return effects

    def hear(self, message: msgspec.Struct) -> tuple[Effect, ...]:
        identity = Identity(getattr(message, "from_uuid", "peer"), Role.MEMBER)
        return self.step(Inbound(message, 9, "peer", identity))

    def beat(self, at: float, answering: Sequence[str]) -> tuple[Effect, ...]:
        """A heartbeat tick at ``at``, answered at once by ``answering``."""
        effects = self.step(HeartbeatTick(), at)
        for uuid in answering:
            self.hear(HeartbeatAck(from_uuid=uuid, sequence=self.node.heartbeat_sequence))
        return effects

    def until_silent(self, target: str) -> tuple[Effect, ...]:
        """Everyone answers for 10 s, then ``target`` falls silent: tick until a round about
        it starts; the effects of that tick."""
        others = self.uuids()
        for tick in range(1, 11):
            self.beat(float(tick), others)
        alive = [u for u in others if u != target]
        second = 11.0
        while target not in self.node.probes:
            effects = self.beat(second, alive)
            assert not of_type(effects, Suspected)
            second += 1.0
            assert second < 30.0, "the target never turned silent"
        return effects

    def deadline(self) -> tuple[Effect, ...]:
        """The probe timer fires at the earliest deadline under way."""
        deadlines = [p.deadline for p in self.node.probes.values() if p.deadline is not None]
        return self.step(ProbeTick(), min(deadlines))


def result(observer: Observer, relay: str, target: str, alive: bool) -> ProbeResult:
    nonce = observer.node.probes[target].nonce
    return ProbeResult(
        from_uuid=relay, to_uuid=observer.uuid, target_uuid=target, nonce=nonce, alive=alive
    )


def test_a_silent_target_is_told_and_k_relays_are_asked_before_anything_is_published() -> None:
    observer = Observer(6)
    target = observer.uuids()[0]
    effects = observer.until_silent(target)
    requests = sent(effects, ProbeRequest)
    assert len(requests) == SETTINGS.indirect_checks
    assert {r.target_uuid for r in requests} == {target}
    assert {r.to_uuid for r in requests} <= set(observer.uuids()) - {target}
    assert [s.to_uuid for s in sent(effects, Suspect)] == [target]
    assert any(isinstance(t.message, ProbeTick) for t in of_type(effects, SetTimer))
    assert target not in observer.node.state.unreachable()


def test_a_silent_target_that_relays_nack_is_published() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    relays = sorted(observer.node.probes[target].relays)
    observer.hear(result(observer, relays[0], target, alive=False))
    assert target not in observer.node.state.unreachable()  # not before the deadline
    effects = observer.deadline()
    assert [s.member.uuid for s in of_type(effects, Suspected)] == [target]
    assert observer.node.state.reachability_row(observer.uuid) == {target}


def settled(size: int, settings: Settings = CHECKING) -> Observer:
    """An observer (with the answer check) whose targets have all answered for 10 s."""
    observer = Observer(size, settings)
    for tick in range(1, 11):
        observer.beat(float(tick), observer.uuids())
    return observer


def answers_checked(observer: Observer, late: float = 0.0) -> tuple[Effect, ...]:
    """The probe timer fires ``late`` after the answers to the latest heartbeats are due."""
    due = observer.node.answers_due
    assert due is not None
    return observer.step(ProbeTick(), due + late)


def test_a_heartbeat_unanswered_for_a_probe_timeout_starts_a_round_long_before_phi() -> None:
    observer = settled(5)
    target = observer.uuids()[0]
    observer.beat(11.0, [u for u in observer.uuids() if u != target])
    assert observer.node.answers_due == 11.0 + SETTINGS.probe_timeout
    effects = answers_checked(observer)
    assert observer.node.detectors[target].is_available(observer.now)  # phi trusts it yet
    assert [s.to_uuid for s in sent(effects, Suspect)] == [target]
    assert {r.target_uuid for r in sent(effects, ProbeRequest)} == {target}
    assert not observer.node.state.unreachable()  # asking is not accusing


def test_without_the_answer_check_an_unanswered_heartbeat_waits_for_phi() -> None:
    observer = settled(5, SETTINGS)  # the default: answer_check off
    target = observer.uuids()[0]
    observer.beat(11.0, [u for u in observer.uuids() if u != target])
    assert observer.node.answers_due is None
    effects = observer.step(ProbeTick(), 11.0 + 2 * SETTINGS.probe_timeout)
    assert not sent(effects, Suspect)
    assert not sent(effects, ProbeRequest)


def test_a_round_the_check_started_publishes_on_nacks_and_until_the_target_answers() -> None:
    observer = settled(5)
    target = observer.uuids()[0]
    alive = [u for u in observer.uuids() if u != target]
    observer.beat(11.0, alive)
    answers_checked(observer)
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(result(observer, relay, target, alive=False))
    assert target not in observer.node.state.unreachable()  # not before the deadline
    effects = observer.deadline()
    assert [s.member.uuid for s in of_type(effects, Suspected)] == [target]
    # Phi still trusts the target, yet it stays published while it does not answer...
    observer.beat(12.0, alive)
    assert observer.node.detectors[target].is_available(observer.now)
    assert target in observer.node.state.reachability_row(observer.uuid)
    # ... and is withdrawn at the first heartbeat tick after it answers again.
    observer.beat(13.0, observer.uuids())
    observer.beat(14.0, observer.uuids())
    assert target not in observer.node.state.reachability_row(observer.uuid)


def test_a_late_answer_check_means_this_member_was_stalled_it_asks_nobody() -> None:
    observer = settled(5)
    target = observer.uuids()[0]
    observer.beat(11.0, [u for u in observer.uuids() if u != target])
    effects = answers_checked(observer, late=2 * SETTINGS.probe_timeout)
    assert not sent(effects, Suspect)
    assert not sent(effects, ProbeRequest)
    assert observer.node.local_health == 1
    # The score stretches the next check.
    observer.beat(12.0, observer.uuids())
    assert observer.node.answers_due == 12.0 + 2 * SETTINGS.probe_timeout


def test_a_relay_ack_means_alive_even_beside_nacks() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    first, second, *_ = sorted(observer.node.probes[target].relays)
    observer.hear(result(observer, first, target, alive=False))
    observer.hear(result(observer, second, target, alive=True))
    probe = observer.node.probes[target]
    assert (probe.deadline, probe.alive_elsewhere) == (None, True)  # the round has ended
    effects = observer.step(ProbeTick(), observer.now + 10.0)
    assert not of_type(effects, Suspected)
    assert target not in observer.node.state.unreachable()


def test_a_target_alive_to_relays_but_silent_here_for_a_pause_more_is_published() -> None:
    """A broken link, not a dead member: the relays hear the target, this member still does
    not an acceptable pause after the silence began. It publishes the target, and the
    indirectly connected rule decides from the whole table which of the two is downed."""
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    since = observer.node.probes[target].since
    alive = [u for u in observer.uuids() if u != target]
    second = observer.now
    while target not in observer.node.state.reachability_row(observer.uuid):
        for relay in sorted(observer.node.probes[target].relays):
            observer.hear(result(observer, relay, target, alive=True))
        second += 1.0
        observer.beat(second, alive)
        assert second < 30.0, "a broken link was never published"
    assert second - since >= SETTINGS.acceptable_heartbeat_pause
    assert target not in observer.node.probes


def test_an_answer_of_the_suspect_itself_ends_the_round() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    nonce = observer.node.probes[target].nonce
    observer.hear(HeartbeatAck(from_uuid=target, sequence=nonce))
    assert target not in observer.node.probes
    assert not of_type(observer.step(ProbeTick(), observer.now + 10.0), Suspected)


def test_with_the_check_relays_that_never_answer_publish_nothing_and_raise_health() -> None:
    observer = Observer(5, CHECKING)
    target = observer.uuids()[0]
    observer.until_silent(target)
    started = observer.now
    asked = len(observer.node.probes[target].relays)
    first = observer.node.probes[target].deadline
    assert first is not None
    effects = observer.deadline()
    assert not of_type(effects, Suspected)
    assert [u.member.uuid for u in of_type(effects, Unconfirmed)] == [target]
    assert observer.node.local_health == asked
    assert not observer.node.state.unreachable()
    # The same timer finds the target still silent to the latest heartbeat and starts the next
    # round, which waits longer: its deadline is stretched by the score.
    stretched = observer.node.probes[target].deadline
    assert stretched is not None
    assert stretched - observer.now == 2 * SETTINGS.probe_timeout * (asked + 1) > first - started
    # A heartbeat tick while it is under way starts no other round.
    observer.step(HeartbeatTick(), observer.now + 0.5)
    assert observer.node.probes[target].deadline == stretched


def test_relays_that_never_answer_publish_nothing_and_raise_local_health() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    asked = len(observer.node.probes[target].relays)
    first = observer.node.probes[target].deadline
    assert first is not None
    effects = observer.deadline()
    assert not of_type(effects, Suspected)
    assert [u.member.uuid for u in of_type(effects, Unconfirmed)] == [target]
    assert observer.node.local_health == asked
    assert not observer.node.state.unreachable()
    # The next round waits longer: its deadline is stretched by the score (less the 1 that
    # this tick takes off, as the other targets still answer).
    tick = observer.now + 0.5
    observer.step(HeartbeatTick(), tick)
    health = observer.node.local_health
    assert health == asked - 1
    stretched = observer.node.probes[target].deadline
    assert stretched is not None
    assert stretched - tick == 2 * SETTINGS.probe_timeout * (health + 1) > first - observer.now


def test_a_successful_round_lowers_local_health_by_one() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    observer.deadline()  # nobody answered
    observer.step(HeartbeatTick(), observer.now + 0.5)  # a new round
    raised = observer.node.local_health
    assert raised > 0
    relay = sorted(observer.node.probes[target].relays)[0]
    observer.hear(result(observer, relay, target, alive=True))
    assert observer.node.local_health == raised - 1


def test_local_health_stays_within_its_bounds() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    alive = observer.uuids()[1:]
    for _ in range(10):
        observer.deadline()
        assert observer.node.local_health <= SETTINGS.max_local_health
        observer.beat(observer.now + 0.5, alive)  # the answering targets take 1 off
    observer.deadline()
    assert observer.node.local_health == SETTINGS.max_local_health
    assert not observer.node.state.unreachable()


def test_a_relay_probes_the_target_and_acks_when_it_answers() -> None:
    relay = Observer(5)
    requester, target = relay.uuids()[:2]
    request = ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=target, nonce=4)
    effects = relay.hear(request)
    probes = sent(effects, Heartbeat)
    assert [(h.to_uuid, h.sequence) for h in probes] == [(target, 4)]
    effects = relay.hear(HeartbeatAck(from_uuid=target, sequence=4))
    answer = ProbeResult(
        from_uuid=relay.uuid, to_uuid=requester, target_uuid=target, nonce=4, alive=True
    )
    assert sent(effects, ProbeResult) == [answer]
    assert not relay.node.relayed


def test_a_flood_of_probe_requests_keeps_one_relay_per_requester_and_target() -> None:
    """Requests come from the wire: repeating them must not grow the relay's state."""
    relay = Observer(5)
    requester, target, other = relay.uuids()[:3]
    for nonce in range(100):
        relay.hear(
            ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=target, nonce=nonce)
        )
    relay.hear(ProbeRequest(from_uuid=other, to_uuid=relay.uuid, target_uuid=target, nonce=7))
    assert sorted((r.requester, r.nonce) for r in relay.node.relayed) == sorted(
        [(requester, 99), (other, 7)]
    )


def test_a_relay_nacks_a_target_that_does_not_answer_in_time() -> None:
    relay = Observer(5)
    requester, target = relay.uuids()[:2]
    request = ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=target, nonce=4)
    timers = of_type(relay.hear(request), SetTimer)
    assert [t.delay for t in timers if isinstance(t.message, ProbeTick)] == [SETTINGS.probe_timeout]
    effects = relay.step(ProbeTick(), relay.now + SETTINGS.probe_timeout)
    answer = ProbeResult(
        from_uuid=relay.uuid, to_uuid=requester, target_uuid=target, nonce=4, alive=False
    )
    assert sent(effects, ProbeResult) == [answer]


def test_a_suspect_that_is_told_answers_at_once() -> None:
    suspect = Observer(5)
    observer = suspect.uuids()[0]
    effects = suspect.hear(Suspect(from_uuid=observer, to_uuid=suspect.uuid, nonce=12))
    replies = [r.message for r in of_type(effects, Reply)]
    assert replies == [HeartbeatAck(from_uuid=suspect.uuid, sequence=12)]


def test_a_two_member_cluster_still_publishes_on_its_own_silence() -> None:
    observer = Observer(2)
    (target,) = observer.uuids()
    for second in range(1, 11):
        observer.beat(float(second), [target])
    suspected: list[Suspected] = []
    for second in range(11, 25):
        effects = observer.beat(float(second), [])
        assert not sent(effects, ProbeRequest)
        suspected += of_type(effects, Suspected)
    assert [s.member.uuid for s in suspected] == [target]
    assert observer.node.state.reachability_row(observer.uuid) == {target}


def test_a_member_that_hears_none_of_its_relays_publishes_after_an_acceptable_pause() -> None:
    observer = Observer(3)
    others = observer.uuids()
    for tick in range(1, 11):
        observer.beat(float(tick), others)
    first_round: float | None = None
    published_at: float | None = None
    second = 11.0
    while published_at is None and second < 40.0:
        observer.beat(second, [])
        deadlines = [p.deadline for p in observer.node.probes.values() if p.deadline]
        if deadlines:
            first_round = first_round or second
            observer.step(ProbeTick(), min(deadlines))
        if observer.node.state.reachability_row(observer.uuid) == set(others):
            published_at = observer.now
        second += 1.0
    assert first_round is not None
    assert published_at is not None
    assert published_at - first_round >= SETTINGS.acceptable_heartbeat_pause


def test_probe_messages_cross_the_wire_and_a_broken_one_is_dropped_by_rule() -> None:
    relay = Observer(5)
    requester, target = relay.uuids()[:2]
    messages = (
        ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=target, nonce=3),
        ProbeResult(
            from_uuid=target, to_uuid=relay.uuid, target_uuid=requester, nonce=3, alive=True
        ),
        Suspect(from_uuid=requester, to_uuid=relay.uuid, nonce=3),
    )
    for message in messages:
        assert WIRE_CODEC.decode(WIRE_CODEC.encode(message)) == message
    forged = ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=relay.uuid, nonce=3)
    effects = relay.hear(forged)
    assert [(d.rule, d.sender) for d in of_type(effects, Dropped)] == [
        ("probe-members-distinct", requester)
    ]
    assert not relay.node.relayed


def test_a_round_that_ends_after_its_target_was_removed_publishes_no_non_member() -> None:
    """The simulator found gossip stuck on a row naming a removed member (every peer drops such a
    state): a round that confirms a target the cluster removed meanwhile marks nobody."""
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    relay = sorted(observer.node.probes[target].relays)[0]
    observer.hear(result(observer, relay, target, alive=False))
    state = observer.node.state
    removed = state.replaced(
        members=tuple(m for m in state.members if m.uuid != target),
        tombstones=((target, observer.now),),
        version=state.version.without({target}),
    )
    published, _ = Publication().publish(removed)
    observer.node = dataclasses.replace(observer.node, published=published)
    observer.deadline()
    assert target not in observer.node.state.reachability_row(observer.uuid)


def test_a_member_that_hears_a_target_its_row_still_accuses_does_not_down_itself() -> None:
    """Three members accuse the observer, which accuses a silent target: the table downs the
    observer. The target answers again (a partition healed) between two heartbeat ticks,
    before the row is refreshed: the observer's picture is changing, and it waits; once the
    row is refreshed it decides on it (here: still downed, the others' rows are unchanged)."""
    observer = Observer(5)
    target, *others = observer.uuids()
    observer.until_silent(target)
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(result(observer, relay, target, alive=False))
    observer.deadline()
    assert observer.node.state.reachability_row(observer.uuid) == {target}
    state = observer.node.state
    for accuser in others[:3]:
        state = state.set_reachability(accuser, {observer.uuid})
    published, _ = observer.node.published.publish(state)
    observer.node = dataclasses.replace(observer.node, published=published)
    start = observer.now + 0.1
    observer.step(GossipTick(), start)
    for second in range(1, 10):
        observer.beat(start + second, others)
        assert not of_type(observer.step(GossipTick(), start + second + 0.1), Downing)
    observer.beat(start + 10, [*others, target])  # the tick ran before the target answered
    assert observer.node.state.reachability_row(observer.uuid) == {target}
    assert SETTINGS.down_after <= 10.0  # the window is over: on its row, it would go now
    assert not of_type(observer.step(GossipTick(), start + 10.1), Downing)
    observer.beat(start + 11, [*others, target])  # refreshed: the row is empty now
    assert not observer.node.state.reachability_row(observer.uuid)
    assert observer.node.termination is None
