"""Failure detection and downing, as steps of a member: heartbeats, reachability, keep-majority.

Each member heartbeats its ``monitored_by`` successors on the ring (``ring``), feeds their
answers to one phi accrual detector each, and publishes the silent ones that a relay confirms
(``probing``) as its reachability row.
Once the set of unreachable members has been stable for ``down_after``, keep-majority
(``downing``) decides: the leader of the majority downs the others; a minority downs itself. A
picture that keeps changing for ``down_after + down_all_when_unstable`` downs every member that
sees it (Pekko's down-all-when-unstable).
"""

from __future__ import annotations

import dataclasses
import math

from messages.member import MemberStatus
from messages.membership.downing import (
    Decision,
    Verdict,
    down_members,
    keep_majority,
    keeps_on_a_reading_set_aside,
    no_side_keeps,
    pending_unreachable,
    stable_window,
)
from messages.membership.effects import (
    CloseLink,
    Downing,
    HeartbeatTick,
    Paused,
    SetTimer,
    TerminationKind,
)
from messages.membership.failure_detector import PhiAccrualFailureDetector
from messages.membership.node import Step
from messages.membership.probing import (
    adjust_health,
    expect_answers,
    publish_row,
    start_probes,
    unanswered,
)
from messages.membership.protocol import Heartbeat
from messages.membership.ring import heartbeat_targets
from messages.membership.state import MembershipState

__all__ = [
    "MONITORED_STATUSES",
    "discount_own_pause",
    "heartbeat_answered",
    "heartbeat_tick",
    "leader_tick",
    "monitored_members",
]

MONITORED_STATUSES = frozenset({MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING})
"""Members that heartbeat and are heartbeated; an EXITING one is on its way out."""


def heartbeat_tick(run: Step) -> None:
    """Heartbeat the targets, update this member's reachability row, redial silent targets;
    then set the next tick.

    A target that turns silent is published only once a relay confirms it (``probing``); one
    already published stays so while silent, a downed one until it is removed, and one
    found terminated (``probing``) until it answers.
    """
    settings = run.node.settings
    run.effects.append(SetTimer(settings.heartbeat_interval, HeartbeatTick()))
    state = run.state
    me = state.member(run.uuid)
    if me is None or me.status not in MONITORED_STATUSES:
        return
    monitored = monitored_members(state)
    targets = heartbeat_targets(run.uuid, monitored, settings.monitored_by, state.unreachable())
    _watch(run, targets)
    detectors = run.node.detectors
    silent = frozenset(
        u for u in targets if u in detectors and not detectors[u].is_available(run.now)
    )
    _redial(run, silent)
    quiet = silent | unanswered(run)  # published ones stay so until they answer
    sequence = run.node.heartbeat_sequence + 1
    run.node = dataclasses.replace(run.node, heartbeat_sequence=sequence)
    for uuid in targets:
        target = state.member(uuid)
        assert target is not None
        run.send(target.address, Heartbeat(from_uuid=run.uuid, to_uuid=uuid, sequence=sequence))
    if run.node.settings.answer_check:
        expect_answers(run)
    if len(silent) < len(targets):
        adjust_health(run, -1)  # this member hears from some of its targets
    row = state.reachability_row(run.uuid)
    downed = {m.uuid for m in state.members if m.status == MemberStatus.DOWN}
    crashed = state.terminated_by(run.uuid)  # a refused dial: marked until it answers
    alone = start_probes(run, silent - row, monitored)
    publish_row(run, (quiet & row) | alone | (row & downed) | crashed)


def monitored_members(state: MembershipState) -> list[str]:
    """The members that heartbeat and are heartbeated, in state order."""
    return [m.uuid for m in state.members if m.status in MONITORED_STATUSES]


def discount_own_pause(run: Step) -> None:
    """Run at every step of a running member: a gap since its last step longer than the pause
    others' detectors tolerate means this member itself was paused (a stalled process, a
    suspended machine). Its targets' silence over that gap is its own, so their detectors do not
    count it (as Lifeguard's local health does; else a member waking from a pause reports every
    other member unreachable). Its view may be stale (it may have been removed meanwhile, and
    gossip queued during the pause looks as fresh as any), so for one detection period it
    neither welcomes joiners nor acts as leader (``Step.quiet``): time for its peers to answer
    its first gossip and heartbeats, with a ``RemovalNotice`` if it is out."""
    node = run.node
    settings = node.settings
    if node.last_step is None or run.now - node.last_step <= settings.acceptable_heartbeat_pause:
        return
    gap = run.now - node.last_step
    run.effects.append(Paused(gap))
    run.node = dataclasses.replace(
        run.node,
        detectors={u: d.paused(gap, run.now) for u, d in node.detectors.items()},
        first_answer_due={u: t + gap for u, t in node.first_answer_due.items()},
        quiet_until=run.now + settings.heartbeat_interval + settings.acceptable_heartbeat_pause,
    )


def heartbeat_answered(run: Step, sender: str) -> None:
    """A heartbeat answer from ``sender``: feed its detector (if this member still watches it)."""
    node = run.node
    if sender in node.first_answer_due:
        due = {u: t for u, t in node.first_answer_due.items() if u != sender}
        run.node = dataclasses.replace(run.node, first_answer_due=due)
    elif sender not in node.detectors:
        return  # from a member this node no longer monitors
    _heartbeat(run, sender, run.now)


def _heartbeat(run: Step, uuid: str, at: float) -> None:
    detectors = dict(run.node.detectors)
    detector = detectors.get(uuid)
    if detector is None:
        settings = run.node.settings
        detector = PhiAccrualFailureDetector(
            threshold=settings.phi_threshold,
            acceptable_heartbeat_pause=settings.acceptable_heartbeat_pause,
            min_std_deviation=settings.min_std_deviation,
            first_heartbeat_estimate=settings.heartbeat_interval,
        )
    detectors[uuid] = detector.heartbeat(at)
    run.node = dataclasses.replace(run.node, detectors=detectors)


def _watch(run: Step, targets: tuple[str, ...]) -> None:
    """Follow the heartbeat ring: drop detectors of former targets, expect answers from new ones.

    A new target's detector starts with its first real answer; one that has not answered
    within a heartbeat interval gets a stand-in first heartbeat then (as Akka does), so a target
    that never answers is still detected, and a live one's history holds only real intervals.
    """
    node = run.node
    if not set(node.detectors) <= set(targets):
        run.node = dataclasses.replace(
            run.node, detectors={u: d for u, d in node.detectors.items() if u in targets}
        )
    expected_by = run.now + node.settings.heartbeat_interval
    due = {
        uuid: node.first_answer_due.get(uuid, expected_by)
        for uuid in targets
        if uuid not in run.node.detectors
    }
    overdue = [u for u, at in due.items() if at <= run.now]
    for uuid in overdue:
        _heartbeat(run, uuid, due.pop(uuid))
    if due != node.first_answer_due:
        run.node = dataclasses.replace(run.node, first_answer_due=due)


def _redial(run: Step, silent: frozenset[str]) -> None:
    """Close the links to heartbeat targets that stopped answering, once per acceptable pause.

    The next heartbeat then dials a fresh connection. After a partition heals, a connection
    that lost packets can stay stuck in TCP retransmission backoff for many seconds (and the
    kernel's TCP_USER_TIMEOUT is not there on every platform): a new one works at once.
    """
    node = run.node
    pause = node.settings.acceptable_heartbeat_pause
    redialled = {u: t for u, t in node.redialled_at.items() if u in silent}
    for uuid in sorted(silent):
        member = run.state.member(uuid)
        if member is not None and run.now - redialled.get(uuid, -math.inf) >= pause:
            redialled[uuid] = run.now
            run.effects.append(CloseLink(member.address, "heartbeats unanswered"))
    if redialled != node.redialled_at:
        run.node = dataclasses.replace(run.node, redialled_at=redialled)


def leader_tick(run: Step) -> None:
    """Every gossip tick: act as leader, consider downing, finish a lone exit."""
    if not run.node.joined:
        return
    run.act_as_leader()
    _apply_downing(run)
    _finish_lone_exit(run)


def _apply_downing(run: Step) -> None:
    state = run.state
    settings = run.node.settings
    _track_stability(run, pending_unreachable(state))
    stable_for = run.now - run.node.unreachable_since
    # Found silent here (by phi, or a hint), not confirmed by a relay yet; a target only
    # late to answer (``probing.unanswered``) is not counted: a round about it is a question.
    silent = frozenset(
        t
        for t, p in run.node.probes.items()
        if p.hinted or not (t in run.node.detectors and run.node.detectors[t].is_available(run.now))
    )
    window = stable_window(state, settings)
    decision = keep_majority(state, run.uuid, stable_for, window, silent)
    if decision.verdict is not Verdict.WAIT:
        run.node = dataclasses.replace(run.node, unstable_since=None)
    if decision.verdict is Verdict.DOWN_UNREACHABLE:
        leader = state.leader()
        if leader is not None and leader.uuid == run.uuid and not run.quiet:
            doomed = decision.unreachable
            downed = (m for u in sorted(doomed) if (m := state.member(u)) is not None)
            run.effects.append(Downing(tuple(downed), decision.reachable_count, decision.total))
            run.adopt(down_members(state, doomed, by=run.uuid))
    elif decision.verdict is Verdict.DOWN_SELF:
        if _hears_an_accused_target(run, state):
            return  # its own row is out of date: the next heartbeat tick withdraws it
        if _heard_from_the_accused(run, stable_for - window):
            return  # the cut may be healing: its heartbeats will tell within a round
        if _no_side_keeps_yet(run, silent, stable_for - window):
            return  # nobody can keep against it: its self-down protects nobody yet
        if _lost_on_rows_set_aside_yet(run, silent, stable_for - window):
            return  # it loses only on rows that may be stale: they may be set aside soon
        _down_self(run, decision, "this member was on the minority side of a partition")
    elif _unstable_too_long(run):
        _down_self(run, decision, "the unreachable members did not settle (down all when unstable)")


def _hears_an_accused_target(run: Step, state: MembershipState) -> bool:
    """This member's own row still accuses a heartbeat target that it hears again (a partition
    healed since its last heartbeat tick, which refreshes the row). Its picture is changing:
    it does not down itself on it. Waiting keeps nobody, and lasts until the next tick."""
    detectors = run.node.detectors
    accused = state.reachability_row(run.uuid) - state.terminated_by(run.uuid)
    return any(u in detectors and detectors[u].is_available(run.now) for u in accused)


def _heard_from_the_accused(run: Step, overdue: float) -> bool:
    """A member its own row still accuses, or whose row accuses this member, sent this member
    something within the last heartbeat interval (``NodeState.heard_accused``), and the verdict
    is no more than an ``acceptable_heartbeat_pause`` overdue. Such a member may be coming back
    (a cut healing, the far side's messages arriving before its answers do, an accuser that
    hears this one again and withdraws at its next heartbeat tick): waiting lets the next
    heartbeats tell. Waiting keeps nobody, and is bounded: a member that keeps hearing the far
    side but never gets its answers (a one-way cut) downs itself that pause later."""
    settings = run.node.settings
    if overdue >= settings.acceptable_heartbeat_pause:
        return False
    state = run.state
    accused = state.reachability_row(run.uuid)
    return any(
        (uuid in accused or run.uuid in state.reachability_row(uuid))
        and run.now - at <= settings.heartbeat_interval
        for uuid, at in run.node.heard_accused.items()
    )


def _no_side_keeps_yet(run: Step, silent: frozenset[str], overdue: float) -> bool:
    """No other side can keep the cluster against this member (``downing.no_side_keeps``, with
    its unconfirmed silences counted over there too), and the verdict is less than one more
    ``down_after`` overdue. Waiting keeps nobody, and as far as the table tells no side can
    decide to down this one; it gives a paused member or a healing cut a second window to come
    back to a side that then holds a majority. The bound lets a cluster whose majority is gone
    for good end, and bounds the harm where the table does not tell the whole truth (a
    rejecting firewall; docs/architecture.md)."""
    if overdue >= run.node.settings.down_after:
        return False
    return no_side_keeps(run.state, run.uuid, run.state.unreachable() | silent)


def _lost_on_rows_set_aside_yet(run: Step, silent: frozenset[str], overdue: float) -> bool:
    """This member would keep with the rows of the fewest members set aside
    (``downing.keeps_on_a_reading_set_aside``), and the verdict is less than one more
    ``down_after`` overdue. Such rows may be stale: their owners may be confirmed gone, come
    back and withdraw them, or be downed by the side that keeps, within that window. Waiting
    keeps nobody, and is bounded: then it downs itself as before."""
    if overdue >= run.node.settings.down_after:
        return False
    return keeps_on_a_reading_set_aside(run.state, run.uuid, silent)


def _track_stability(run: Step, pending: frozenset[str]) -> None:
    """Restart the stable window when a suspicion is added or withdrawn, and note when the
    picture first became unstable (until it is decided or nothing is pending any more)."""
    before = run.node.pending_unreachable
    if pending != before:
        # Only a new suspicion, or one withdrawn, makes the picture unstable again; a member
        # that leaves the set because it was downed (maybe by itself) is progress.
        withdrawn = any(_is_live(run.state, uuid) for uuid in before - pending)
        if pending - before or withdrawn:
            unstable_since = run.node.unstable_since
            run.node = dataclasses.replace(
                run.node,
                unreachable_since=run.now,
                unstable_since=run.now if unstable_since is None else unstable_since,
            )
        run.node = dataclasses.replace(run.node, pending_unreachable=pending)
    if not pending and run.node.unstable_since is not None:
        run.node = dataclasses.replace(run.node, unstable_since=None)


def _unstable_too_long(run: Step) -> bool:
    """Pekko's down-all-when-unstable: the picture has kept changing for ``down_after`` plus
    ``down_all_when_unstable`` without a decision, so every member that sees it downs itself."""
    settings = run.node.settings
    since = run.node.unstable_since
    if settings.down_all_when_unstable is None or since is None:
        return False
    return run.now - since >= settings.down_after + settings.down_all_when_unstable


def _down_self(run: Step, decision: Decision, why: str) -> None:
    run.effects.append(Downing((run.node.me,), decision.reachable_count, decision.total))
    run.finish(TerminationKind.REMOVED, f"downed itself: {why}")
    run.adopt(down_members(run.state, frozenset({run.uuid}), by=run.uuid))


def _is_live(state: MembershipState, uuid: str) -> bool:
    member = state.member(uuid)
    return member is not None and member.status < MemberStatus.EXITING


def _finish_lone_exit(run: Step) -> None:
    """An EXITING member with nobody left to remove it removes itself."""
    state = run.state
    me = state.member(run.uuid)
    if me is None or me.status != MemberStatus.EXITING:
        return
    if all(m.uuid == run.uuid or m.status >= MemberStatus.EXITING for m in state.members):
        run.adopt(MembershipState(tombstones=((run.uuid, run.wall_time),)))
        run.finish(TerminationKind.LEFT, "left the cluster")
