"""Authority on the wire: whether a member may act on a wire message, given who the handshake of
the link it came over said the peer is (``Inbound.identity``).

Validation (``messages.membership.validation``) asks whether a message is well formed; this asks
whether its sender may say it. The rules (docs/architecture.md, "Authority on the wire"):

- A client changes nothing. From a client's link the step takes ``Watch`` and no other protocol
  message: anything else is dropped and the link closed (``Disconnect``). Its application
  envelopes never reach the step (the ordering actor checks their sender).
- Nobody speaks in another's name. A message that names its sender (``from_uuid``; a ``Join``'s
  member, with its address) is taken only over a member's link whose handshake named that
  sender; and no link speaks as this member itself.
- Fate comes from members in good standing. Gossip (full or status) and probe results, which
  feed downing, are taken only from a live member (JOINING to EXITING) of this member's own view;
  a downed or removed one is still answered with a ``RemovalNotice`` (``inbound``), one it does
  not know (yet) is ignored, but for a JOINING one's full gossip, taken as an introduction (it is
  added as JOINING, as its ``Join`` would have added it; nothing else of its state is taken).
- A ``RemovalNotice`` stops this member only when it comes from a live member of its own view and
  carries that member's state, which holds the sender live and this member DOWN or removed: a
  notice must agree with the gossip of the member that sends it.
- A joiner, which has no view yet, takes its first one only from a seed it dials: a ``Welcome``
  (or ``JoinRefused``) counts only from a member link at one of its seeds' addresses, and the
  welcome state must hold that sender live at that address.

Each refusal is a ``Dropped`` effect naming the rule, which the interpreter logs.
"""

from __future__ import annotations

from messages.member import Member, MemberStatus
from messages.membership.effects import Disconnect, Dropped, Inbound
from messages.membership.node import Step
from messages.membership.protocol import (
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
from messages.membership.state import MembershipState
from messages.wire.handshake import HelloAccepted, HelloRefused, Identity, Role

__all__ = ["in_good_standing", "permitted"]

_Breach = tuple[str | None, str]
"""The rule a message breaks (None: valid, but not for this member to act on) and why."""


def permitted(run: Step, inbound: Inbound) -> bool:
    """Whether the member may act on ``inbound``; if not, its ``Dropped`` (and, from a client,
    the ``Disconnect`` of its link) are added to the step's effects."""
    wire, identity = inbound.message, inbound.identity
    if isinstance(wire, Watch | HelloAccepted):
        return True  # anyone past the handshake may watch; an answer changes nothing
    if identity is not None and identity.role is Role.CLIENT:
        detail = f"a client may watch and send application messages, not {type(wire).__name__}"
        _drop(run, inbound, ("client-changes-nothing", detail))
        run.effects.append(Disconnect(inbound.link, detail))
        return False
    breach = _breach(run, wire, identity)
    if breach is None:
        return True
    _drop(run, inbound, breach)
    return False


def in_good_standing(state: MembershipState, uuid: str) -> bool:
    """Whether ``uuid`` is a live member of ``state``: JOINING to EXITING (not DOWN, not
    removed)."""
    member = state.member(uuid)
    return member is not None and member.status <= MemberStatus.EXITING


def _breach(run: Step, wire: object, identity: Identity | None) -> _Breach | None:
    """Why a member's link may not say ``wire`` here, or None if it may."""
    if isinstance(wire, HelloRefused):  # the first frame of a link this member dialled
        return None if identity is None else ("refusal-first", "a refusal after a handshake")
    if identity is None:
        return ("link-identified", "it came over a link whose peer has not said who it is")
    if identity.uuid == run.uuid:
        return ("link-not-self", "its link's handshake named this member itself")
    match wire:
        case (
            Gossip(from_uuid=sender)
            | GossipStatus(from_uuid=sender)
            | Heartbeat(from_uuid=sender)
            | HeartbeatAck(from_uuid=sender)
            | Suspect(from_uuid=sender)
            | ProbeRequest(from_uuid=sender)
            | ProbeResult(from_uuid=sender)
        ) if sender != identity.uuid:
            return (
                "sender-is-link",
                f"it names {sender} as its sender, but its link's handshake named {identity.uuid}",
            )
        case Join(member=member) if member.uuid != identity.uuid or (
            identity.address is not None and member.address != identity.address
        ):
            return (
                "joiner-is-link",
                f"it asks to join {member.uuid} at {member.address}, but its link's handshake "
                f"named {identity.uuid} at {identity.address}",
            )
        case Gossip(from_uuid=sender, state=state) if _stranger(run.state, sender):
            return _introduction_breach(run, identity, state.member(identity.uuid))
        case GossipStatus(from_uuid=sender, joiner=Member() as joiner) if _stranger(
            run.state, sender
        ) and _leads(run):
            return _introduction_breach(run, identity, joiner)
        case GossipStatus(from_uuid=sender) | ProbeResult(from_uuid=sender) if _stranger(
            run.state, sender
        ):
            return (None, f"{sender} is no member of this member's view (yet)")
        case ProbeResult(from_uuid=sender) if not in_good_standing(run.state, sender):
            return ("sender-in-good-standing", f"{sender} is out of the cluster in this view")
        case RemovalNotice(to_uuid=recipient, state=state) if recipient == run.uuid:
            return _notice_breach(run, identity, state)
        case Welcome(state=state) if _joining(run):
            return _answer_breach(run, identity, state)
        case JoinRefused() if _joining(run):
            return _answer_breach(run, identity, None)
    return None


def _leads(run: Step) -> bool:
    """This member leads its view: the one member that takes a joiner's digest as its
    introduction (each introduction is a new version, and in a join storm the seeds' news of
    the joiner is on its way to every other member anyway)."""
    leader = run.state.leader()
    return leader is not None and leader.uuid == run.uuid


def _stranger(state: MembershipState, uuid: str) -> bool:
    """Neither a member of ``state`` nor one it has put out of the cluster."""
    return state.member(uuid) is None and not state.is_tombstoned(uuid)


def _introduction_breach(run: Step, identity: Identity, sender: Member | None) -> _Breach | None:
    """Gossip (full, or a digest naming its ``joiner``) from a member this one does not know
    yet is taken as that member's introduction (``inbound``: it is added as JOINING, as a
    ``Join`` would add it, and nothing else of its state is taken): a joiner welcomed by a seed
    that was removed before it spread the news has no other way in. So ``sender``, the member
    it shows as itself, must be a joiner at the address its link named."""
    if (
        not run.node.joined
        or sender is None
        or sender.uuid != identity.uuid
        or sender.status is not MemberStatus.JOINING
    ):
        return (None, f"{identity.uuid} is no member of this member's view (yet)")
    if identity.address is not None and sender.address != identity.address:
        detail = (
            f"it introduces {sender.address}, but its link's handshake named {identity.address}"
        )
        return ("joiner-is-link", detail)
    return None


def _notice_breach(run: Step, identity: Identity, state: MembershipState | None) -> _Breach | None:
    """A removal notice agrees with the sender's standing here and with its own gossip."""
    sender = identity.uuid
    if not in_good_standing(run.state, sender):
        return ("notice-from-member", f"{sender} is no live member of this member's view")
    if state is None:
        return ("notice-shows-removal", "it carries no state to show the removal")
    if not in_good_standing(state, sender):
        return ("notice-shows-removal", f"the state it carries does not hold {sender} live")
    if state.removal_reason(run.uuid) is None:
        member = state.member(run.uuid)
        shown = "no member" if member is None else member.status.name
        return ("notice-shows-removal", f"the state it carries shows this member {shown}")
    return None


def _joining(run: Step) -> bool:
    return run.node.join is not None and not run.node.joined


def _answer_breach(
    run: Step, identity: Identity, welcome: MembershipState | None
) -> _Breach | None:
    """A joiner has no view to judge by: it takes the answer of a seed it dials, whose
    ``welcome`` state (None for a refusal) must hold that seed live at its address."""
    join = run.node.join
    assert join is not None
    if identity.address not in join.seeds:
        seeds = ", ".join(str(seed) for seed in join.seeds)
        return ("answer-from-seed", f"it came from {identity.address}, not a seed ({seeds})")
    if welcome is not None:
        welcomer = welcome.member(identity.uuid)
        if (
            welcomer is None
            or welcomer.address != identity.address
            or not in_good_standing(welcome, identity.uuid)
        ):
            detail = f"the welcome state does not hold its sender {identity.uuid} live there"
            return ("answer-from-seed", detail)
    return None


def _drop(run: Step, inbound: Inbound, breach: _Breach) -> None:
    rule, detail = breach
    wire = inbound.message
    sender = getattr(wire, "from_uuid", None)
    if sender is None and inbound.identity is not None:
        sender = inbound.identity.uuid
    run.effects.append(Dropped(type(wire).__name__, inbound.peer, rule, detail, sender))
