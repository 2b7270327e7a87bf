"""Evidence that a process is gone, step by step: the transport's hint, refused confirmations,
the terminated row, and the shorter stable window for a picture of crashes only (no threads)."""

from __future__ import annotations

import msgspec
import pytest
from test_probing import SETTINGS, Observer, of_type, result, sent

from messages.membership.downing import Verdict, keep_majority, stable_window
from messages.membership.effects import Downing, GossipTick, PeerGone, ProbeTick, Suspected
from messages.membership.merging import ReachabilityRow, merge_reachability
from messages.membership.protocol import Heartbeat, HeartbeatAck, ProbeRequest, ProbeResult, Suspect
from messages.membership.state import MembershipState
from messages.membership.validation import InvalidMessage, validate_state
from messages.testing.simulator import converged_cluster
from messages.wire.codec import WIRE_CODEC


def warmed(size: int) -> Observer:
    """An observer whose heartbeat targets have answered for 10 s."""
    observer = Observer(size)
    for tick in range(1, 11):
        observer.beat(float(tick), observer.uuids())
    return observer


def gone(observer: Observer, uuid: str, refused: bool) -> PeerGone:
    member = observer.node.state.member(uuid)
    assert member is not None
    return PeerGone(member.address, refused=refused)


def refused_nack(observer: Observer, relay: str, target: str) -> ProbeResult:
    return msgspec.structs.replace(result(observer, relay, target, alive=False), refused=True)


def test_a_closed_link_to_a_heartbeat_target_starts_a_round_at_once() -> None:
    observer = warmed(5)
    target = observer.uuids()[0]
    effects = observer.step(gone(observer, target, refused=False), 10.2)
    probe = observer.node.probes[target]
    assert probe.hinted
    assert not probe.refused_here
    assert [s.to_uuid for s in sent(effects, Suspect)] == [target]
    assert {r.to_uuid for r in sent(effects, ProbeRequest)} == probe.relays
    assert not observer.node.state.unreachable()  # a hint is no verdict
    # The detector still trusts the target: the next tick keeps the hinted round under way.
    observer.beat(10.5, [u for u in observer.uuids() if u != target])
    assert target in observer.node.probes


def test_a_hinted_round_that_the_target_answers_ends_alive() -> None:
    observer = warmed(5)
    target = observer.uuids()[0]
    observer.step(gone(observer, target, refused=False), 10.2)
    observer.hear(HeartbeatAck(from_uuid=target, sequence=observer.node.probes[target].nonce))
    assert target not in observer.node.probes
    assert not of_type(observer.step(ProbeTick(), 12.0), Suspected)


def test_a_hint_about_a_member_that_is_not_a_heartbeat_target_is_ignored() -> None:
    observer = warmed(8)
    others = [u for u in observer.uuids() if u not in observer.node.detectors]
    assert others  # 7 others, 5 targets
    assert observer.step(gone(observer, others[0], refused=True), 10.2) == ()
    assert not observer.node.probes


def test_a_round_refused_here_and_by_every_relay_publishes_a_terminated_member_at_once() -> None:
    observer = warmed(5)
    target = observer.uuids()[0]
    observer.step(gone(observer, target, refused=False), 10.2)
    observer.step(gone(observer, target, refused=True), 10.21)  # its own Suspect's dial
    *first, last = sorted(observer.node.probes[target].relays)
    for relay in first:
        observer.hear(refused_nack(observer, relay, target))
    assert not observer.node.state.unreachable()  # one relay has not answered yet
    effects = observer.hear(refused_nack(observer, last, target))
    assert [s.member.uuid for s in of_type(effects, Suspected)] == [target]
    state = observer.node.state
    assert state.reachability_row(observer.uuid) == state.terminated_by(observer.uuid) == {target}
    assert target not in observer.node.probes
    # It stays marked while it does not answer, though its detector has not given up yet.
    observer.beat(11.0, [u for u in observer.uuids() if u != target])
    assert observer.node.state.terminated_by(observer.uuid) == {target}
    # Should it answer after all, the mark goes.
    observer.hear(HeartbeatAck(from_uuid=target, sequence=observer.node.heartbeat_sequence))
    assert not observer.node.state.reachability_row(observer.uuid)
    assert not observer.node.state.terminated_by(observer.uuid)


def test_one_silent_nack_among_refusals_makes_it_unreachable_not_terminated() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    observer.step(gone(observer, target, refused=True), observer.now + 0.01)
    assert observer.node.probes[target].refused_here
    first, second, *_ = sorted(observer.node.probes[target].relays)
    observer.hear(refused_nack(observer, first, target))
    observer.hear(result(observer, second, target, alive=False))
    observer.deadline()
    state = observer.node.state
    assert state.reachability_row(observer.uuid) == {target}
    assert not state.terminated_by(observer.uuid)


def test_refusals_to_relays_alone_are_no_crash_without_this_members_own() -> None:
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)  # the detector's round: this member's dial is not refused
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(refused_nack(observer, relay, target))
    assert not observer.node.state.unreachable()  # waits for the deadline, as any round
    observer.deadline()
    assert observer.node.state.reachability_row(observer.uuid) == {target}
    assert not observer.node.state.terminated_by(observer.uuid)


def test_a_hinted_round_that_finds_only_silence_leaves_it_to_the_detector() -> None:
    observer = warmed(5)
    target = observer.uuids()[0]
    observer.step(gone(observer, target, refused=False), 10.2)
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(result(observer, relay, target, alive=False))
    effects = observer.deadline()
    assert not of_type(effects, Suspected)
    assert not observer.node.state.unreachable()
    assert target not in observer.node.probes


def test_a_relay_whose_dial_to_the_target_is_refused_nacks_at_once_saying_so() -> None:
    relay = warmed(5)
    requester, target = relay.uuids()[:2]
    request = ProbeRequest(from_uuid=requester, to_uuid=relay.uuid, target_uuid=target, nonce=4)
    assert sent(relay.hear(request), Heartbeat)
    effects = relay.step(gone(relay, target, refused=True), relay.now + 0.01)
    answer = ProbeResult(
        from_uuid=relay.uuid,
        to_uuid=requester,
        target_uuid=target,
        nonce=4,
        alive=False,
        refused=True,
    )
    assert answer in sent(effects, ProbeResult)
    assert not relay.node.relayed


def crashed_and_downed_at(terminated: bool) -> float:
    """An observer publishes its first target unreachable: ``terminated`` (refused everywhere,
    on the transport's hint), or on silence confirmed by plain nacks; then gossip ticks run
    until the leader (the observer) downs it. How long that took after the publication."""
    observer = warmed(5) if terminated else Observer(5)
    target = observer.uuids()[0]
    if terminated:
        observer.step(gone(observer, target, refused=True), 10.2)
    else:
        observer.until_silent(target)
    for relay in sorted(observer.node.probes[target].relays):
        nack = result(observer, relay, target, alive=False)
        observer.hear(msgspec.structs.replace(nack, refused=terminated))
    if not terminated:
        observer.deadline()
    assert observer.node.state.terminated_by(observer.uuid) == ({target} if terminated else set())
    published = observer.now
    assert observer.node.state.reachability_row(observer.uuid) == {target}
    interval = SETTINGS.gossip_interval / SETTINGS.fast_gossip_factor
    for count in range(1, 100):
        tick = published + count * interval
        if count % SETTINGS.fast_gossip_factor == 0:
            observer.beat(tick, observer.uuids()[1:])
        if of_type(observer.step(GossipTick(), tick), Downing):
            return tick - published
    raise AssertionError("never downed")


def test_a_terminated_member_is_downed_after_crash_down_after() -> None:
    waited = crashed_and_downed_at(terminated=True)
    assert SETTINGS.crash_down_after <= waited < SETTINGS.crash_down_after + 1.0


def test_an_ambiguous_accusation_waits_the_full_down_after() -> None:
    waited = crashed_and_downed_at(terminated=False)
    assert SETTINGS.down_after <= waited < SETTINGS.down_after + 1.0


def rows(*rows: ReachabilityRow) -> MembershipState:
    return converged_cluster(5).replaced(reachability=rows)


@pytest.mark.parametrize(
    ("picture", "window"),
    [
        (
            (
                ReachabilityRow(
                    "member-00000", 1, frozenset({"member-00001"}), frozenset({"member-00001"})
                ),
            ),
            "crash",
        ),
        (
            (
                ReachabilityRow(
                    "member-00000", 1, frozenset({"member-00004"}), frozenset({"member-00004"})
                ),
                ReachabilityRow(
                    "member-00002", 1, frozenset({"member-00004"}), frozenset({"member-00004"})
                ),
            ),
            "crash",
        ),
        # Another observer accuses the same member on silence alone: ambiguous.
        (
            (
                ReachabilityRow(
                    "member-00000", 1, frozenset({"member-00004"}), frozenset({"member-00004"})
                ),
                ReachabilityRow("member-00002", 1, frozenset({"member-00004"})),
            ),
            "down_after",
        ),
        # The accused accuses too (indirectly connected, or a suspect): ambiguous.
        (
            (
                ReachabilityRow(
                    "member-00000", 1, frozenset({"member-00004"}), frozenset({"member-00004"})
                ),
                ReachabilityRow(
                    "member-00004", 1, frozenset({"member-00000"}), frozenset({"member-00000"})
                ),
            ),
            "down_after",
        ),
    ],
)
def test_the_stable_window_is_short_only_for_a_picture_of_crashes_alone(
    picture: tuple[ReachabilityRow, ...], window: str
) -> None:
    expected = SETTINGS.crash_down_after if window == "crash" else SETTINGS.down_after
    assert stable_window(rows(*picture), SETTINGS) == expected


def test_the_crash_window_is_never_longer_than_down_after() -> None:
    crash = rows(
        ReachabilityRow("member-00000", 1, frozenset({"member-00001"}), frozenset({"member-00001"}))
    )
    short = SETTINGS.replace(down_after=1.0)
    assert stable_window(crash, short) == 1.0


def test_a_row_from_a_peer_without_terminated_decodes_with_none() -> None:
    class OldRow(msgspec.Struct, frozen=True):
        observer: str
        version: int
        unreachable: frozenset[str]

    old = msgspec.msgpack.encode(OldRow("member-00000", 3, frozenset({"member-00001"})))
    row = msgspec.msgpack.decode(old, type=ReachabilityRow)
    assert row == ReachabilityRow("member-00000", 3, frozenset({"member-00001"}))
    assert row.terminated == frozenset()
    old_result = ProbeResult(from_uuid="a", to_uuid="b", target_uuid="c", nonce=1, alive=False)
    assert WIRE_CODEC.decode(WIRE_CODEC.encode(old_result)).refused is False


def test_rows_merge_whole_per_observer_version() -> None:
    crashed = ReachabilityRow(
        "member-00000", 1, frozenset({"member-00001"}), frozenset({"member-00001"})
    )
    newer = ReachabilityRow("member-00000", 2, frozenset({"member-00001"}))
    assert merge_reachability((crashed,), (newer,), frozenset()) == (newer,)
    assert merge_reachability((newer,), (crashed,), frozenset()) == (newer,)
    stripped = merge_reachability((crashed,), (), frozenset({"member-00001"}))
    assert stripped == (ReachabilityRow("member-00000", 1, frozenset()),)


def test_a_terminated_subject_that_is_not_unreachable_is_refused_by_rule() -> None:
    broken = rows(ReachabilityRow("member-00000", 1, frozenset(), frozenset({"member-00001"})))
    with pytest.raises(InvalidMessage) as refused:
        validate_state(broken)
    assert refused.value.rule == "terminated-are-unreachable"
    with pytest.raises(ValueError, match="terminated"):
        converged_cluster(3).set_reachability("member-00000", set(), {"member-00001"})


def test_a_crash_of_most_of_the_cluster_still_costs_it_after_the_short_window() -> None:
    dead = frozenset({"member-00002", "member-00003", "member-00004"})
    state = rows(ReachabilityRow("member-00000", 1, dead, dead))
    window = stable_window(state, SETTINGS)
    assert window == SETTINGS.crash_down_after
    decision = keep_majority(state, "member-00000", stable_for=window, down_after=window)
    assert decision.verdict is Verdict.DOWN_SELF


def published_on_silence() -> tuple[Observer, str]:
    """An observer of 5 that has published its first target unreachable: silent to it, and every
    relay's probe found it silent too."""
    observer = Observer(5)
    target = observer.uuids()[0]
    observer.until_silent(target)
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(result(observer, relay, target, alive=False))
    observer.deadline()
    return observer, target


def test_a_published_target_whose_dial_is_then_refused_is_confirmed_terminated() -> None:
    """A target published on silence (a partition, a pause) whose process then goes (it downed
    itself, or crashed): the refusal starts a round, and refusals everywhere mark it terminated,
    so its frozen row is set aside (``verdicts``). Without it the mark never came: seeds 12, 25
    and 88 of the simulator lost the whole cluster to the row of a member that had downed
    itself."""
    observer, target = published_on_silence()
    assert observer.node.state.reachability_row(observer.uuid) == {target}
    assert not observer.node.state.terminated_by(observer.uuid)
    observer.step(gone(observer, target, refused=True), observer.now + 0.01)
    assert observer.node.probes[target].refused_here
    for relay in sorted(observer.node.probes[target].relays):
        observer.hear(refused_nack(observer, relay, target))
    assert observer.node.state.terminated_by(observer.uuid) == {target}
    assert target not in observer.node.probes
    # Known gone: a later refusal starts nothing.
    assert observer.step(gone(observer, target, refused=True), observer.now + 0.01) == ()


def test_a_closed_link_to_a_published_target_starts_nothing() -> None:
    """Only a refusal tells of a gone process; an EOF about a published target is no news."""
    observer, target = published_on_silence()
    assert observer.step(gone(observer, target, refused=False), observer.now + 0.01) == ()
    assert target not in observer.node.probes


def stale(*records: tuple[str, set[str], set[str]]) -> MembershipState:
    """A converged cluster of 7 with rows (observer, unreachable, terminated) by index."""
    state = converged_cluster(7)
    for observer, unreachable, terminated in records:
        state = state.set_reachability(
            f"member-0000{observer}",
            {f"member-0000{u}" for u in unreachable},
            {f"member-0000{t}" for t in terminated},
        )
    return state


def test_the_frozen_row_of_a_member_confirmed_gone_is_set_aside() -> None:
    """Seed 152: member 1 crashed while cut from 2, 5 and 6; its row still accuses them.
    Everyone accuses it, so the vertex cover has no witness and the union made the whole
    cluster count itself a minority. Confirmed gone (terminated by members nobody marks so),
    its row is set aside: only it is unreachable, and the rest keeps."""
    records = [(o, {"1"}, {"1"} if o in "035" else set()) for o in "023456"]
    state = stale(("1", {"2", "5", "6"}, set()), *((int(o), u, t) for o, u, t in records))
    assert state.unreachable() == {"member-00001"}
    decision = keep_majority(state, "member-00000", stable_for=10.0, down_after=10.0)
    assert decision.verdict is Verdict.DOWN_UNREACHABLE
    assert decision.unreachable == {"member-00001"}
    # Marked unreachable on silence only, it may be alive and may have acted: the union.
    silent = stale(("1", {"2", "5", "6"}, set()), *((int(o), {"1"}, set()) for o in "023456"))
    assert silent.unreachable() == {f"member-0000{u}" for u in "1256"}


def test_a_partition_behind_a_rejecting_firewall_sets_no_row_aside() -> None:
    """Both sides mark the other terminated: every marking observer is marked too, nobody is
    gone, and the rows are read exactly as without the marks."""
    left, right = {"0", "1", "2", "3"}, {"4", "5", "6"}
    state = stale(
        *((int(o), right, right) for o in sorted(left)),
        *((int(o), left, left) for o in sorted(right)),
    )
    unmarked = stale(
        *((int(o), right, set()) for o in sorted(left)),
        *((int(o), left, set()) for o in sorted(right)),
    )
    assert state.unreachable() == unmarked.unreachable() == {f"member-0000{u}" for u in right}
