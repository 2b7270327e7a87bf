"""The protocol rules a decoded wire message must keep before any actor acts on it.

Decoding already checked each field's type and bounds (``messages.limits``). What is left are the
rules across fields that every state built by the core keeps (``tests/test_validation.py`` checks
that on random cluster histories): a state that breaks one was forged or corrupted, and merging it
could crash a leader or resurrect a member. ``validate`` raises ``InvalidMessage`` naming the rule;
the receiver drops the message with one log line and carries on.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable, Sequence

from messages.member import Member, MemberStatus
from messages.membership.merging import address_order
from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Join,
    ProbeRequest,
    ProbeResult,
    RemovalNotice,
    Suspect,
    Welcome,
)
from messages.membership.state import JOINING, REMOVED, UP, MembershipState

__all__ = [
    "InvalidMessage",
    "validate",
    "validate_state",
]


class InvalidMessage(ValueError):
    """A decodable message that breaks protocol rule ``rule`` (``detail`` says how)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"breaks rule {rule!r}: {detail}")
        self.rule = rule
        self.detail = detail


_VALID_MARK = "_valid"
"""The cache entry that marks a state already validated."""


def validate(message: object, receiver: str) -> None:
    """Check a wire message addressed to member ``receiver``; raise ``InvalidMessage`` if bad.

    Messages without cross-field rules (heartbeats, status digests, handshakes) pass as decoded.
    A probe names three different members (requester, relay, target), a suspicion two.
    """
    match message:
        case Gossip(from_uuid=sender, state=state):
            validate_state(state)
            _require(
                state.member(sender) is not None,
                "sender-in-state",
                f"gossip from {sender} holds no member {sender}",
            )
        case Welcome(state=state):
            validate_state(state)
            _require(
                state.member(receiver) is not None,
                "welcome-holds-joiner",
                f"the welcome state does not hold the joiner {receiver}",
            )
        case ClientUpdate(state=state) | RemovalNotice(state=MembershipState() as state):
            validate_state(state)
        case (
            ProbeRequest(from_uuid=sender, to_uuid=relay, target_uuid=target)
            | ProbeResult(from_uuid=sender, to_uuid=relay, target_uuid=target)
        ):
            _require(
                len({sender, relay, target}) == 3,
                "probe-members-distinct",
                f"a probe names {sender}, {relay} and {target}: three different members needed",
            )
        case Suspect(from_uuid=sender, to_uuid=suspect):
            _require(
                sender != suspect,
                "suspect-not-itself",
                f"{sender} tells itself that it is suspected",
            )
        case GossipStatus(seen=seen, unseen=frozenset()) if seen:
            raise InvalidMessage(
                "status-seen-or-unseen", "a digest names both who has seen it and who has not"
            )
        case GossipStatus(from_uuid=sender, joiner=Member() as joiner):
            _require(
                joiner.uuid == sender,
                "status-joiner-is-sender",
                f"a digest from {sender} introduces {joiner.uuid}",
            )
            _require(
                joiner.status is MemberStatus.JOINING and joiner.up_number == 0,
                "joiner-is-joining",
                f"a joiner must be JOINING with up_number 0, got {joiner.status.name} "
                f"with up_number {joiner.up_number}",
            )
        case Join(member=member):
            _require(
                member.status is MemberStatus.JOINING and member.up_number == 0,
                "joiner-is-joining",
                f"a joiner must be JOINING with up_number 0, got {member.status.name} "
                f"with up_number {member.up_number}",
            )


def validate_state(state: MembershipState) -> None:
    """Check the rules every honest ``MembershipState`` keeps; raise ``InvalidMessage`` if not.

    A state is immutable, so one found valid is marked and not checked again (a decoded state is
    a new object; states shared in one process, as in the simulator, are checked once).
    """
    if state.__dict__.get(_VALID_MARK):
        return
    members = state.members
    uuids = {member.uuid for member in members}
    _require(len(uuids) == len(members), "unique-members", "a uuid appears twice among members")
    # The checks below test first and format a detail only for a rule broken: a full state is
    # validated on every receipt (12 % of a member's CPU while 200 form a cluster).
    keys = [(m.address.host, m.address.port, m.uuid) for m in members]  # Address's own order
    if not all(map(operator.lt, keys, keys[1:])):
        pairs = itertools.pairwise(members)
        before, after = next((a, b) for a, b in pairs if not address_order(a) < address_order(b))
        raise InvalidMessage(
            "members-sorted",
            f"{after.uuid} comes after {before.uuid}: members must be sorted by address",
        )
    _check_statuses(members)
    _subset(state.seen, uuids, "seen-are-members", "has seen this version")
    _subset(
        state.version.timestamps.keys(), uuids, "clock-entries-are-members", "has a clock entry"
    )
    observers = [row.observer for row in state.reachability]
    _require(
        observers == sorted(set(observers)),
        "rows-sorted-unique",
        "reachability rows must be sorted by observer, one row per observer",
    )
    for row in state.reachability:
        observer = row.observer
        if observer not in uuids:
            raise InvalidMessage(
                "row-observer-is-member", f"{observer} has a reachability row but is not a member"
            )
        if row.version <= 0:
            raise InvalidMessage("row-version-positive", f"row of {observer} has version 0")
        if observer in row.unreachable:
            raise InvalidMessage("row-not-about-itself", f"{observer} marks itself unreachable")
        if not row.unreachable <= uuids:
            _subset(row.unreachable, uuids, "row-subjects-are-members", "is marked unreachable")
        if not row.terminated <= row.unreachable:
            raise InvalidMessage(
                "terminated-are-unreachable",
                f"row of {observer} marks terminated members it does not mark unreachable",
            )
    tombstoned = [uuid for uuid, _ in state.tombstones]
    _require(
        tombstoned == sorted(set(tombstoned)),
        "tombstones-sorted-unique",
        "tombstones must be sorted by uuid, one per uuid",
    )
    _require(
        all(math.isfinite(removed_at) for _, removed_at in state.tombstones),
        "tombstone-times-finite",
        "a tombstone's removal time is not a finite number",
    )
    buried = uuids.intersection(tombstoned)
    _require(not buried, "tombstoned-not-member", f"tombstoned {sorted(buried)} still members")
    state.__dict__[_VALID_MARK] = True


def _check_statuses(members: Sequence[Member]) -> None:
    # The state module's constants: an enum member read off its class (74 ns on Python 3.11)
    # cost more than the tests, and this runs for every member of every state received.
    for member in members:
        status = member.status
        if status is UP:
            if member.up_number <= 0:
                raise InvalidMessage("up-has-up-number", f"UP {member.uuid} has up_number 0")
        elif status is JOINING:
            if member.up_number != 0:
                raise InvalidMessage(
                    "joining-not-up", f"JOINING {member.uuid} has up_number {member.up_number}"
                )
        elif status is REMOVED:
            raise InvalidMessage(
                "no-removed-members",
                f"{member.uuid} is REMOVED but still listed (a removed member leaves a tombstone "
                "instead)",
            )


def _subset(uuids: Iterable[str], members: set[str], rule: str, what: str) -> None:
    strangers = set(uuids).difference(members)
    _require(not strangers, rule, f"{sorted(strangers)[:3]} {what} but not a member")


def _require(condition: bool, rule: str, detail: str) -> None:
    if not condition:
        raise InvalidMessage(rule, detail)
