"""A member's answers to wire messages: joins, gossip, gossip status, heartbeats, probes,
notices.

Every message is validated first (``messages.membership.validation``), then checked against the
identity of the link it came over (``messages.membership.authority``); one that breaks a rule is
dropped, with a ``Dropped`` effect naming the sender and the rule, so no input can derail the
protocol, and nobody changes a member's fate in another's name.
"""

from __future__ import annotations

import dataclasses

from messages.member import Member
from messages.membership.authority import permitted
from messages.membership.detection import heartbeat_answered
from messages.membership.effects import Dropped, Inbound, Watching
from messages.membership.node import Step
from messages.membership.probing import probe_requested, probe_result, target_answered
from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Heartbeat,
    HeartbeatAck,
    Join,
    JoinRefused,
    ProbeRequest,
    ProbeResult,
    RemovalNotice,
    Suspect,
    Watch,
    Welcome,
)
from messages.membership.validation import InvalidMessage, validate
from messages.vector_clock import Causality
from messages.wire.handshake import HelloAccepted, HelloRefused

__all__ = ["receive"]


def receive(run: Step, inbound: Inbound) -> None:
    """Validate a wire message, check that its link may say it
    (``messages.membership.authority``), then act on it."""
    wire = inbound.message
    try:
        validate(wire, run.uuid)
    except InvalidMessage as error:
        sender = getattr(wire, "from_uuid", None)
        name = type(wire).__name__
        run.effects.append(Dropped(name, inbound.peer, error.rule, error.detail, sender))
        return
    if permitted(run, inbound):
        _note_accused_sender(run, getattr(wire, "from_uuid", None))
        _act(run, wire, inbound)


def _note_accused_sender(run: Step, sender: str | None) -> None:
    """Note when a member this one's own row accuses, or whose row accuses this one, sends it
    anything: a sign that the cut is healing, which ``detection`` waits on before a self-down.
    Kept for the members still pending only; the pending set is checked first, so a settled
    cluster pays one set lookup per message."""
    node = run.node
    if sender is None or sender not in node.pending_unreachable:
        return
    state = run.state
    if sender in state.reachability_row(run.uuid) or run.uuid in state.reachability_row(sender):
        heard = {u: t for u, t in node.heard_accused.items() if u in node.pending_unreachable}
        heard[sender] = run.now
        run.node = dataclasses.replace(node, heard_accused=heard)


def _act(run: Step, wire: object, inbound: Inbound) -> None:
    state, link = run.state, inbound.link
    match wire:
        case (
            Gossip(to_uuid=recipient)
            | GossipStatus(to_uuid=recipient)
            | Heartbeat(to_uuid=recipient)
            | Suspect(to_uuid=recipient)
            | ProbeRequest(to_uuid=recipient)
            | ProbeResult(to_uuid=recipient)
        ) if recipient != run.uuid:
            pass  # meant for an earlier incarnation at this address
        case (
            Gossip(from_uuid=sender)
            | GossipStatus(from_uuid=sender)
            | Heartbeat(from_uuid=sender)
            | Suspect(from_uuid=sender)
            | ProbeRequest(from_uuid=sender)
        ) if (reason := state.removal_reason(sender)) is not None:
            # A downed or removed incarnation that still talks: never merge its gossip, never
            # acknowledge its heartbeats, tell it that it is out (so it stops, not lives on).
            run.reply(link, RemovalNotice(to_uuid=sender, reason=reason, state=state))
        case Gossip(from_uuid=sender) | GossipStatus(from_uuid=sender) if (
            sender in state.reachability_row(run.uuid)
        ):
            # No gossip from a member this one marks unreachable (Pekko's receive-side filter):
            # a member that hears nobody accuses everybody, and its row must not spread through
            # those it cannot hear. Heartbeats still pass, so the mark clears once the link heals.
            pass
        case Gossip(from_uuid=sender, state=remote) if run.state.member(sender) is None:
            _introduced(run, remote.member(sender), inbound)
        case GossipStatus(from_uuid=sender, joiner=joiner) if run.state.member(sender) is None:
            _introduced(run, joiner, inbound)
        case Gossip():
            _on_gossip(run, wire)
            run.act_as_leader()
        case GossipStatus():
            _on_gossip_status(run, wire)
            run.act_as_leader()
        case Heartbeat(sequence=sequence) | Suspect(nonce=sequence):
            # A suspect answers at once, so a false suspicion ends before it is confirmed.
            run.reply(link, HeartbeatAck(from_uuid=run.uuid, sequence=sequence))
        case HeartbeatAck(from_uuid=sender):
            heartbeat_answered(run, sender)
            target_answered(run, sender)
        case ProbeRequest():
            probe_requested(run, wire)
        case ProbeResult():
            probe_result(run, wire)
        case Join(member=member):
            _on_join(run, member, inbound)
        case Welcome(state=welcome) if not run.node.joined and run.node.join is not None:
            run.adopt(state.receive(welcome, run.uuid)[0])
            run.joined_now()
        case JoinRefused(reason=reason) | HelloRefused(reason=reason):
            if run.node.join is not None and not run.node.joined:
                run.fail_join(reason, refused=True)
        case RemovalNotice(to_uuid=recipient, reason=reason) if recipient == run.uuid:
            run.finish_removed(f"a member answered: {reason}")
        case Watch():
            run.reply(link, ClientUpdate(state=state))
            run.effects.append(Watching(link))
        case RemovalNotice() | Welcome() | HelloAccepted():
            pass  # for an earlier incarnation, or an answer this member no longer waits for
        case _:
            detail = "is no message a member takes"
            run.effects.append(Dropped(type(wire).__name__, inbound.peer, "known-type", detail))


def _on_join(run: Step, member: Member, inbound: Inbound, welcome: bool = True) -> None:
    if not run.node.joined or run.quiet:  # the joiner retries, or tries another seed
        why = "this member was just paused" if run.node.joined else "this member has not joined"
        run.effects.append(Dropped("Join", inbound.peer, None, why, member.uuid))
        return
    if run.state.is_tombstoned(member.uuid):
        reason = f"incarnation {member.uuid} was removed"
        run.reply(inbound.link, JoinRefused(reason=reason))
        return
    run.adopt(run.state.add_joining(member, by=run.uuid))
    if welcome:
        run.reply(inbound.link, Welcome(state=run.state))


def _introduced(run: Step, member: Member | None, inbound: Inbound) -> None:
    """A joiner this member does not know yet gossips, its full state or a digest naming it
    (``authority`` let only that through): add it as its ``Join`` would have, and take nothing
    else of its state (the gossip that follows, from a member in good standing now, brings the
    rest)."""
    assert member is not None  # authority: a stranger's gossip shows the sender as a joiner
    _on_join(run, member, inbound, welcome=False)


def _on_gossip(run: Step, gossip: Gossip) -> None:
    """Gossip from a live member of this member's view (``authority``: so this member has
    joined)."""
    remote, sender = gossip.state, gossip.from_uuid
    if remote.is_tombstoned(run.uuid):
        run.adopt(remote)
        run.finish_removed("the cluster removed this member")
        return
    new_state, causality = run.state.receive(remote, run.uuid)
    run.adopt(new_state, push=False)  # the answer below goes to the sender; ticks spread it on
    match causality:
        case Causality.BEFORE | Causality.CONCURRENT:
            run.gossip_to(sender, full=True)
        case Causality.AFTER:
            run.gossip_to(sender, full=False)  # tell the sender we have seen it now
        case Causality.SAME:
            _share_seen(run, sender, remote.seen)


def _on_gossip_status(run: Step, status: GossipStatus) -> None:
    """A peer's version digest: send the full state when ours is newer, ask for the peer's
    (our own digest) when ours is older, merge the seen sets when they are the same.

    A concurrent version gets the full state (the peer merges it and sends the result back;
    Akka's ``receiveGossipStatus``) where digests go first (``Step.digest_first``): answered
    with a digest there, two members with concurrent versions would send each other their
    digests for ever, at network speed, until one changed, and a join storm of 200 members
    started such pairs by the dozen. A smaller cluster answers it with its digest, as before:
    its next tick sends the full state to a peer that has not seen its version, which ends
    the exchange (the fault simulator's schedules depend on it: with the full state here,
    seed 346 of ``test_simulator`` became a total loss)."""
    match run.state.version.compare(status.version):
        case Causality.AFTER:
            run.gossip_to(status.from_uuid, full=True)
        case Causality.CONCURRENT if run.digest_first:
            run.gossip_to(status.from_uuid, full=True)
        case Causality.BEFORE | Causality.CONCURRENT:
            run.gossip_to(status.from_uuid, full=False)
        case Causality.SAME:
            peer_seen = status.seen_given(run.state.by_uuid)
            run.adopt(run.state.with_seen(peer_seen | {run.uuid}))
            _share_seen(run, status.from_uuid, peer_seen)


def _share_seen(run: Step, peer: str, peer_seen: frozenset[str]) -> None:
    """Same version on both sides: tell ``peer`` who else has seen it when it does not know
    yet, so seen sets (and with them convergence) reach the leader without waiting for ticks."""
    if not run.state.seen <= peer_seen:
        run.gossip_to(peer, full=False)
