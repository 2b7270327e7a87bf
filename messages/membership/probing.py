"""Confirmation before accusation: SWIM's indirect probes and Lifeguard's local health.

A heartbeat target that turns silent is not published at once. This member tells the suspect
(``Suspect``, which a live one answers at once) and asks up to ``indirect_checks`` other members
(``ProbeRequest``) to probe it. Each relay heartbeats the target and answers with a
``ProbeResult``: alive if the target answered within ``probe_timeout``, else not (a nack). An
answer of the target to this member ends the matter: no accusation. One to a relay only ends the
round: the target lives, and if this member still cannot hear it an acceptable pause later, the
link between them is broken, and it publishes the target (the indirectly connected rule then
decides, from the whole table, which of the two goes). At the round's deadline, a nack and no ack publish the target unreachable; no answer at all means
this member is the likely fault (it hears nobody): it publishes nothing, raises its local health
score, which stretches its later rounds, and tries again at the next heartbeat tick. A member
with nobody to ask (two members) publishes on its own silence, as before; so does one whose
relays are all silent to it too, once the target has stayed unconfirmed for an acceptable pause
(a member whose peers are all gone must still count itself alone; if it is the deaf one instead,
its peers have marked it unreachable by then and take no gossip from it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from messages.membership.effects import ProbeTick, SetTimer, Suspected, Unconfirmed
from messages.membership.node import Probe, Relayed, Step
from messages.membership.protocol import Heartbeat, ProbeRequest, ProbeResult, Suspect

__all__ = [
    "adjust_health",
    "probe_requested",
    "probe_result",
    "probe_tick",
    "publish_row",
    "start_probes",
    "target_answered",
]


def publish_row(run: Step, unreachable: frozenset[str]) -> None:
    """Make ``unreachable`` this member's reachability row, with news of each new accusation."""
    row = run.state.reachability_row(run.uuid)
    if unreachable == row:
        return
    for uuid in sorted(unreachable - row):
        if (member := run.state.member(uuid)) is not None:
            run.effects.append(Suspected(member))
    run.adopt(run.state.set_reachability(run.uuid, unreachable))


def start_probes(run: Step, suspects: frozenset[str], monitored: Sequence[str]) -> frozenset[str]:
    """Ask relays about each of ``suspects`` (silent targets not published yet) that no round
    covers yet; drop probes of members no longer among them. Returns the suspects with no
    member to ask (to publish on this member's own silence)."""
    node = run.node
    probes = {t: p for t, p in node.probes.items() if t in suspects}
    alone: set[str] = set()
    deadline = run.now + 2 * node.settings.probe_timeout * (node.local_health + 1)
    nonce = node.heartbeat_sequence
    for target in sorted(suspects):
        probe = probes.get(target)
        if probe is not None and probe.deadline is not None:
            continue  # a round under way
        if (
            probe is not None
            and probe.alive_elsewhere
            and run.now - probe.since >= node.settings.acceptable_heartbeat_pause
        ):
            # Others hear it, this member has not for a detection period more: the link
            # between them is broken. Published as such; which of the two is downed is the
            # indirectly connected rule's to decide (verdicts.py), from the whole table.
            alone.add(target)
            del probes[target]
            continue
        relays = _relays(run, target, monitored)
        if not relays:
            alone.add(target)
            continue
        since = run.now if probe is None else probe.since
        elsewhere = probe is not None and probe.alive_elsewhere
        probes[target] = Probe(since, nonce, deadline, frozenset(relays), alive_elsewhere=elsewhere)
        _send(run, target, Suspect(from_uuid=run.uuid, to_uuid=target, nonce=nonce))
        for relay in relays:
            request = ProbeRequest(
                from_uuid=run.uuid, to_uuid=relay, target_uuid=target, nonce=nonce
            )
            _send(run, relay, request)
    if probes != node.probes:
        run.node = dataclasses.replace(run.node, probes=probes)
        _arm(run)
    return frozenset(alone)


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
    """As a relay: heartbeat the target; ``probe_tick`` or ``target_answered`` answers."""
    target = run.state.member(request.target_uuid)
    if target is None or run.state.member(request.from_uuid) is None:
        return  # a member this one does not know (yet): the requester counts no answer
    sequence = request.nonce
    run.send(target.address, Heartbeat(from_uuid=run.uuid, to_uuid=target.uuid, sequence=sequence))
    deadline = run.now + run.node.settings.probe_timeout
    relayed = Relayed(request.from_uuid, target.uuid, request.nonce, deadline)
    run.node = dataclasses.replace(run.node, relayed=(*run.node.relayed, relayed))
    _arm(run)


def target_answered(run: Step, sender: str) -> None:
    """``sender`` answered a heartbeat: a round about it here ends alive (this member's link to
    it works after all); the relays this member runs for others about it answer alive."""
    node = run.node
    if sender in node.probes:
        probes = {t: p for t, p in node.probes.items() if t != sender}
        run.node = dataclasses.replace(run.node, probes=probes)
        adjust_health(run, -1)
    _answer_relayed(run, lambda r: r.target == sender, alive=True)


def probe_result(run: Step, result: ProbeResult) -> None:
    """A relay's answer: an ack ends the round alive; a nack is counted for the deadline."""
    probe = run.node.probes.get(result.target_uuid)
    if probe is None or probe.nonce != result.nonce or result.from_uuid not in probe.relays:
        return  # a round that has ended, or an answer from a member not asked
    if result.alive:  # alive, but not to this member: the round ends, the silence goes on
        probes = dict(run.node.probes)
        probes[result.target_uuid] = dataclasses.replace(
            probe, deadline=None, nacks=frozenset(), alive_elsewhere=True
        )
        run.node = dataclasses.replace(run.node, probes=probes)
        adjust_health(run, -1)
        _arm(run)
        return
    probes = dict(run.node.probes)
    probes[result.target_uuid] = dataclasses.replace(probe, nacks=probe.nacks | {result.from_uuid})
    run.node = dataclasses.replace(run.node, probes=probes)


def probe_tick(run: Step) -> None:
    """End the rounds whose deadline has come: a target some relay found silent too (and none
    found alive) is published; a round nobody answered raises this member's local health
    score by the relays that did not answer. A member that hears none of its relays (they are
    silent targets of its own, or its health score is already at its worst: no relay has
    answered it for rounds) publishes on its own silence once the target has stayed unconfirmed
    for an acceptable pause: a member whose peers are all gone must still count itself alone.
    Relays this member runs nack on their deadline."""
    _answer_relayed(run, lambda r: r.deadline <= run.now, alive=False)
    probes = dict(run.node.probes)
    confirmed: set[str] = set()
    pause = run.node.settings.acceptable_heartbeat_pause
    for target, probe in sorted(probes.items()):
        if probe.deadline is None or probe.deadline > run.now:
            continue
        saturated = run.node.local_health >= run.node.settings.max_local_health
        adjust_health(run, len(probe.relays) - len(probe.nacks))
        hears_none = saturated or all(_silent(run, relay) for relay in probe.relays)
        if probe.nacks or (hears_none and run.now - probe.since >= pause):
            confirmed.add(target)
            del probes[target]
            continue
        probes[target] = dataclasses.replace(probe, deadline=None, nacks=frozenset())
        if (member := run.state.member(target)) is not None:
            run.effects.append(Unconfirmed(member, run.node.local_health))
    run.node = dataclasses.replace(run.node, probes=probes)
    if confirmed:
        publish_row(run, run.state.reachability_row(run.uuid) | confirmed)
    _arm(run)


def adjust_health(run: Step, delta: int) -> None:
    """Move the local health score by ``delta``, within 0..``max_local_health``."""
    node = run.node
    health = min(max(node.local_health + delta, 0), node.settings.max_local_health)
    if health != node.local_health:
        run.node = dataclasses.replace(run.node, local_health=health)


def _answer_relayed(run: Step, ends: Callable[[Relayed], bool], alive: bool) -> None:
    """Answer (``alive`` or not) the relayed probes for which ``ends`` holds, and drop them."""
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
    if deadlines:
        run.effects.append(SetTimer(max(min(deadlines) - run.now, 0.0), ProbeTick()))
