"""Confirmation before accusation: SWIM's indirect probes and Lifeguard's local health.

A heartbeat target that turns silent is not published at once. This member tells the suspect
(``Suspect``, which a live one answers at once) and asks up to ``indirect_checks`` other members
(``ProbeRequest``) to probe it. Each relay heartbeats the target and answers with a
``ProbeResult``: alive if the target answered within ``probe_timeout``, else not (a nack). An
answer of the target to this member ends the matter: no accusation. One to a relay only ends the
round: the target lives, and if this member still cannot hear it an acceptable pause later, the
link between them is broken, and it publishes the target (the indirectly connected rule then
decides, from the whole table, which of the two goes). At the round's deadline, a nack and no ack
publish the target unreachable; no answer at all means this member is the likely fault (it hears
nobody): it publishes nothing, raises its local health score, which stretches its later rounds, and
tries again at the next heartbeat tick. A member with nobody to ask (two members) publishes on its
own silence, as before; so does one whose relays are all silent to it too, once the target has
stayed unconfirmed for an acceptable pause (a member whose peers are all gone must still count
itself alone; if it is the deaf one instead, its peers have marked it unreachable by then and take
no gossip from it).

The transport's news that a heartbeat target's end is gone (``PeerGone``: its link closed by the
peer, or a dial to it refused) starts a round at once, without waiting for the detector. A relay
whose own dial to the target is refused answers at once, with a refused nack. A round in which
this member's dial was refused and every confirmation is a refused nack found a crashed process,
not silence: the target is published *terminated* as well as unreachable (as soon as every relay
has answered so), which ``downing`` takes down after the shorter ``crash_down_after``. A hinted
round that finds only silence publishes nothing while the detector still trusts the target:
silence is the detector's to judge (else the next tick would withdraw it again). A refusal
about a target already published on silence starts a round too: a member cut off or paused
may since have downed itself or crashed, and its row, frozen in the past, is set aside once it
is confirmed gone (``verdicts``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from messages.member import MemberStatus
from messages.membership.effects import PeerGone, ProbeTick, SetTimer, Suspected, Unconfirmed
from messages.membership.node import Probe, Relayed, Step
from messages.membership.protocol import Heartbeat, ProbeRequest, ProbeResult, Suspect

__all__ = [
    "adjust_health",
    "expect_answers",
    "peer_gone",
    "probe_requested",
    "probe_result",
    "probe_tick",
    "publish_row",
    "start_probes",
    "target_answered",
    "unanswered",
]


def publish_row(
    run: Step, unreachable: frozenset[str], terminated: frozenset[str] = frozenset()
) -> None:
    """Make ``unreachable`` this member's reachability row, with news of each new accusation;
    the subjects it marked terminated stay so while unreachable, ``terminated`` join them.
    Only current members are marked: a round can end after its target was removed, and a row
    naming a non-member is a state every peer drops (the simulator found gossip stuck on one)."""
    unreachable = frozenset(u for u in unreachable if run.state.member(u) is not None)
    row = run.state.reachability_row(run.uuid)
    crashed = (run.state.terminated_by(run.uuid) | terminated) & unreachable
    if unreachable == row and crashed == run.state.terminated_by(run.uuid):
        return
    for uuid in sorted(unreachable - row):
        if (member := run.state.member(uuid)) is not None:
            run.effects.append(Suspected(member))
    run.adopt(run.state.set_reachability(run.uuid, unreachable, crashed))


def start_probes(run: Step, suspects: frozenset[str], monitored: Sequence[str]) -> frozenset[str]:
    """Ask relays about each of ``suspects`` (silent targets not published yet) that no round
    covers yet; drop probes of members no longer among them (but for a hinted round under way).
    Returns the suspects with no member to ask (to publish on this member's own silence)."""
    node = run.node
    probes = {t: p for t, p in node.probes.items() if t in suspects or p.deadline is not None}
    # Others hear it, this member has not for a detection period more: the link between them
    # is broken. Published as such; which of the two is downed is the indirectly connected
    # rule's to decide (verdicts.py), from the whole table.
    broken = frozenset(
        t
        for t in suspects
        if (p := probes.get(t)) is not None
        and p.deadline is None
        and p.alive_elsewhere
        and run.now - p.since >= node.settings.acceptable_heartbeat_pause
    )
    for target in broken:
        del probes[target]
    if probes != node.probes:
        run.node = dataclasses.replace(run.node, probes=probes)
    alone = frozenset(t for t in sorted(suspects - broken) if not _start_round(run, t, monitored))
    if run.node.probes != node.probes:
        _arm(run)
    return alone | broken


def peer_gone(run: Step, gone: PeerGone, monitored: Sequence[str]) -> None:
    """The transport's news that the end of the member at ``gone.address`` is gone: a refusal
    answers the probes this member runs as a relay about it (a refused nack); a heartbeat
    target not published yet gets a round at once (or, under way, notes this refusal), and so
    does one published but not known terminated, on a refusal (only a crash can follow)."""
    member = run.state.member_at(gone.address)
    if member is None:
        return
    target = member.uuid
    if gone.refused:
        _answer_relayed(run, lambda r: r.target == target, alive=False, refused=True)
    if member.status is MemberStatus.EXITING:
        return  # a leaver stops once it is EXITING: its end going is expected, not a crash
    node = run.node
    watched = target in node.detectors or target in node.first_answer_due
    published = target in run.state.reachability_row(run.uuid)
    if not watched or (published and not gone.refused):
        return
    if published and target in run.state.terminated_by(run.uuid):
        return  # known gone already
    probe = node.probes.get(target)
    if probe is not None and probe.deadline is not None:
        if gone.refused and not probe.refused_here:
            _set_probe(run, target, dataclasses.replace(probe, refused_here=True))
            _conclude_crash(run, target)
        return
    run.node = dataclasses.replace(node, heartbeat_sequence=node.heartbeat_sequence + 1)
    if _start_round(run, target, monitored, hinted=True, refused=gone.refused):
        _arm(run)


def _start_round(
    run: Step,
    target: str,
    monitored: Sequence[str],
    hinted: bool = False,
    refused: bool = False,
) -> bool:
    """Start a round about ``target`` unless one is under way: tell it it is suspected and
    ask relays to probe it. False when there is no member to ask."""
    node = run.node
    probe = node.probes.get(target)
    if probe is not None and probe.deadline is not None:
        return True  # a round under way
    relays = _relays(run, target, monitored)
    if not relays:
        return False
    nonce = node.heartbeat_sequence
    deadline = run.now + 2 * node.settings.probe_timeout * (node.local_health + 1)
    since = run.now if probe is None else probe.since
    elsewhere = probe is not None and probe.alive_elsewhere
    round_ = Probe(
        since,
        nonce,
        deadline,
        frozenset(relays),
        hinted=hinted,
        refused_here=refused,
        alive_elsewhere=elsewhere,
    )
    _set_probe(run, target, round_)
    _send(run, target, Suspect(from_uuid=run.uuid, to_uuid=target, nonce=nonce))
    for relay in relays:
        request = ProbeRequest(from_uuid=run.uuid, to_uuid=relay, target_uuid=target, nonce=nonce)
        _send(run, relay, request)
    return True


def _set_probe(run: Step, target: str, probe: Probe) -> None:
    run.node = dataclasses.replace(run.node, probes={**run.node.probes, target: probe})


def _relays(run: Step, target: str, monitored: Sequence[str]) -> list[str]:
    """Up to ``indirect_checks`` members this member does not mark unreachable, chosen with
    its seeded random source, those it does not find silent itself first."""
    row = run.state.reachability_row(run.uuid)
    candidates = [u for u in monitored if u not in row and u not in (run.uuid, target)]
    heard = [u for u in candidates if not _silent(run, u)]
    unheard = [u for u in candidates if _silent(run, u)]
    return (_shuffled(run, heard) + _shuffled(run, unheard))[: run.node.settings.indirect_checks]


def _shuffled(run: Step, uuids: list[str]) -> list[str]:
    """``uuids`` in a random order (Fisher-Yates on the node's own random source)."""
    items = list(uuids)
    for i in range(len(items) - 1, 0, -1):
        j = run.rng.next64() % (i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def _silent(run: Step, uuid: str) -> bool:
    """Whether ``uuid`` is a heartbeat target of this member that it finds silent."""
    detector = run.node.detectors.get(uuid)
    return detector is not None and not detector.is_available(run.now)


def probe_requested(run: Step, request: ProbeRequest) -> None:
    """As a relay: heartbeat the target; ``probe_tick`` or ``target_answered`` answers. One
    relay per requester and target is kept (a newer request replaces an older one), so what
    members ask cannot grow this member's state beyond one entry per pair of members."""
    target = run.state.member(request.target_uuid)
    if target is None or run.state.member(request.from_uuid) is None:
        return  # a member this one does not know (yet): the requester counts no answer
    sequence = request.nonce
    run.send(target.address, Heartbeat(from_uuid=run.uuid, to_uuid=target.uuid, sequence=sequence))
    deadline = run.now + run.node.settings.probe_timeout
    relayed = Relayed(request.from_uuid, target.uuid, request.nonce, deadline)
    others = tuple(
        r
        for r in run.node.relayed
        if (r.requester, r.target) != (relayed.requester, relayed.target)
    )
    run.node = dataclasses.replace(run.node, relayed=(*others, relayed))
    _arm(run)


def target_answered(run: Step, sender: str) -> None:
    """``sender`` answered a heartbeat: a round about it here ends alive (this member's link to
    it works after all); the relays this member runs for others about it answer alive. One this
    member had found terminated is not, after all: its mark goes."""
    node = run.node
    if sender in node.probes:
        probes = {t: p for t, p in node.probes.items() if t != sender}
        run.node = dataclasses.replace(run.node, probes=probes)
        adjust_health(run, -1)
    _answer_relayed(run, lambda r: r.target == sender, alive=True)
    if sender in run.state.terminated_by(run.uuid):
        publish_row(run, run.state.reachability_row(run.uuid) - {sender})


def probe_result(run: Step, result: ProbeResult) -> None:
    """A relay's answer: an ack ends the round (the target lives, elsewhere at least); a nack
    is counted for the deadline, and a refused one may show a crash at once
    (``_conclude_crash``)."""
    probe = run.node.probes.get(result.target_uuid)
    if probe is None or probe.nonce != result.nonce or result.from_uuid not in probe.relays:
        return  # a round that has ended, or an answer from a member not asked
    if result.alive:  # alive, but not to this member: the round ends, the silence goes on
        ended = dataclasses.replace(
            probe,
            deadline=None,
            nacks=frozenset(),
            refusals=frozenset(),
            refused_here=False,
            alive_elsewhere=True,
        )
        _set_probe(run, result.target_uuid, ended)
        adjust_health(run, -1)
        _arm(run)
        return
    refusals = probe.refusals | {result.from_uuid} if result.refused else probe.refusals
    nacks = probe.nacks | {result.from_uuid}
    _set_probe(run, result.target_uuid, dataclasses.replace(probe, nacks=nacks, refusals=refusals))
    _conclude_crash(run, result.target_uuid)


def _conclude_crash(run: Step, target: str) -> None:
    """Publish ``target`` terminated now if this member's dial to it was refused and so was
    every relay's: nothing the deadline could still bring would change the verdict."""
    probe = run.node.probes[target]
    if probe.refused_here and probe.refusals == probe.relays:
        run.node = dataclasses.replace(
            run.node, probes={t: p for t, p in run.node.probes.items() if t != target}
        )
        crashed = frozenset({target})
        publish_row(run, run.state.reachability_row(run.uuid) | crashed, crashed)
        _arm(run)


def _refused(probe: Probe) -> bool:
    """Some dial of the round was refused: a crash, most likely, which the next rounds confirm
    (``peer_gone``, ``_conclude_crash``) so that it is published terminated (a relay whose probe
    went into a link not yet found closed nacks on its deadline instead, unrefused); until then,
    or should no dial be refused any more, silence is phi's."""
    return bool(probe.refusals) or probe.refused_here


def _crashed(probe: Probe) -> bool:
    """Every confirmation of the round (and this member's own dial) said: refused."""
    return probe.refused_here and bool(probe.nacks) and probe.nacks <= probe.refusals


def expect_answers(run: Step) -> None:
    """This member has just heartbeated its targets: check, ``probe_timeout`` later (stretched
    by its local health), which of them have not answered (``_check_answers``)."""
    node = run.node
    due = run.now + node.settings.probe_timeout * (node.local_health + 1)
    run.node = dataclasses.replace(node, heartbeat_sent_at=run.now, answers_due=due)
    _arm(run)


def unanswered(run: Step) -> frozenset[str]:
    """The heartbeat targets that have not answered since this member last heartbeated them."""
    sent = run.node.heartbeat_sent_at
    if sent is None:
        return frozenset()
    return frozenset(
        uuid
        for uuid, detector in run.node.detectors.items()
        if (last := detector.last_heartbeat) is not None and last < sent
    )


def _check_answers(run: Step, monitored: Sequence[str]) -> None:
    """SWIM's probe timeout: a heartbeat target that has not answered this member's latest
    heartbeat by ``answers_due`` gets a confirmation round now, long before phi would find it
    silent. The round only asks: the target is published only if relays find it silent too.
    A check that comes more than a ``probe_timeout`` late tells that this member itself was
    stalled (answers may wait unread behind the check): it checks nothing and raises its local
    health score, which stretches its next checks and rounds (Lifeguard)."""
    node = run.node
    due = node.answers_due
    if due is None or due > run.now:
        return
    run.node = dataclasses.replace(node, answers_due=None)
    if run.now - due > node.settings.probe_timeout:
        adjust_health(run, 1)
        return
    row = run.state.reachability_row(run.uuid)
    for target in sorted(unanswered(run) - row):
        _start_round(run, target, monitored)


def probe_tick(run: Step, monitored: Sequence[str]) -> None:
    """End the rounds whose deadline has come: a target some relay found silent too (and none
    found alive) is published (terminated if every confirmation was a refusal); a round
    nobody answered raises this member's local health score by the relays that did not answer.
    A member that hears none of its relays (they are silent targets of its own, or its health
    score is already at its worst: no relay has answered it for rounds) publishes on its own
    silence once the target has stayed unconfirmed for an acceptable pause: a member whose
    peers are all gone must still count itself alone (once phi, too, finds the target silent).
    Relays this member runs nack on their deadline. Then the heartbeat answers due are checked
    (``_check_answers``)."""
    _answer_relayed(run, lambda r: r.deadline <= run.now, alive=False)
    probes = dict(run.node.probes)
    confirmed: set[str] = set()
    crashed: set[str] = set()
    pause = run.node.settings.acceptable_heartbeat_pause
    for target, probe in sorted(probes.items()):
        if probe.deadline is None or probe.deadline > run.now:
            continue
        saturated = run.node.local_health >= run.node.settings.max_local_health
        adjust_health(run, len(probe.relays) - len(probe.nacks))
        hears_none = saturated or all(_silent(run, relay) for relay in probe.relays)
        alone = hears_none and _silent(run, target) and run.now - probe.since >= pause
        # Before phi agrees, silence needs most relays' word: one lost answer makes one nack.
        confirmed_by = len(probe.relays) // 2 + 1 if not _silent(run, target) else 1
        if len(probe.nacks) >= confirmed_by or alone:
            del probes[target]
            if _crashed(probe):
                crashed.add(target)
            if _crashed(probe) or _silent(run, target) or not (probe.hinted or _refused(probe)):
                confirmed.add(target)  # a hint alone publishes a crash: silence is phi's
            continue
        probes[target] = dataclasses.replace(
            probe, deadline=None, nacks=frozenset(), refusals=frozenset(), refused_here=False
        )
        if (member := run.state.member(target)) is not None:
            run.effects.append(Unconfirmed(member, run.node.local_health))
    run.node = dataclasses.replace(run.node, probes=probes)
    if confirmed:
        row = run.state.reachability_row(run.uuid) | confirmed
        publish_row(run, row, frozenset(crashed))
    _check_answers(run, monitored)
    _arm(run)


def adjust_health(run: Step, delta: int) -> None:
    """Move the local health score by ``delta``, within 0..``max_local_health``."""
    node = run.node
    health = min(max(node.local_health + delta, 0), node.settings.max_local_health)
    if health != node.local_health:
        run.node = dataclasses.replace(run.node, local_health=health)


def _answer_relayed(
    run: Step, ends: Callable[[Relayed], bool], alive: bool, refused: bool = False
) -> None:
    """Answer (``alive`` or not, ``refused``) the relayed probes for which ``ends`` holds, and
    drop them."""
    done = [r for r in run.node.relayed if ends(r)]
    if not done:
        return
    run.node = dataclasses.replace(
        run.node, relayed=tuple(r for r in run.node.relayed if r not in done)
    )
    for relayed in done:
        result = ProbeResult(
            from_uuid=run.uuid,
            to_uuid=relayed.requester,
            target_uuid=relayed.target,
            nonce=relayed.nonce,
            alive=alive,
            refused=refused,
        )
        _send(run, relayed.requester, result)


def _send(run: Step, uuid: str, message: Suspect | ProbeRequest | ProbeResult) -> None:
    member = run.state.member(uuid)
    if member is not None:
        run.send(member.address, message)


def _arm(run: Step) -> None:
    """Set the probe timer for the earliest deadline under way (it replaces a pending one)."""
    node = run.node
    deadlines = [p.deadline for p in node.probes.values() if p.deadline is not None]
    deadlines += [r.deadline for r in node.relayed]
    deadlines += [] if node.answers_due is None else [node.answers_due]
    if deadlines:
        run.effects.append(SetTimer(max(min(deadlines) - run.now, 0.0), ProbeTick()))
