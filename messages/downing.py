"""Keep-majority downing: the pure decision of what to do about unreachable members."""

from __future__ import annotations

import enum

import msgspec

from messages.address import Address
from messages.member import MemberStatus
from messages.state import MembershipState


class Verdict(enum.Enum):
    """What this side does once the unreachable set has been stable for ``down_after``."""

    WAIT = "wait"  # nothing unreachable, or not stable long enough
    DOWN_UNREACHABLE = "down-unreachable"  # this side is the majority: down the others
    DOWN_SELF = "down-self"  # this side is the minority: down itself and shut down


class Decision(msgspec.Struct, frozen=True):
    verdict: Verdict
    unreachable: frozenset[str]
    reachable_count: int
    total: int


def down_members(state: MembershipState, uuids: frozenset[str], by: str) -> MembershipState:
    """``state`` with each member of ``uuids`` that is still live marked DOWN by ``by``.

    Total: uuids that are not members, or that are DOWN already, are skipped (and nothing
    changes when ``by`` is not a member), so no state the wire can bring makes downing raise.
    """
    if state.member(by) is None:
        return state
    for uuid in sorted(uuids):
        member = state.member(uuid)
        if member is not None and member.status < MemberStatus.DOWN:
            state = state.set_status(uuid, MemberStatus.DOWN, by=by)
    return state


def pending_unreachable(state: MembershipState) -> frozenset[str]:
    """Unreachable members not yet DOWN or EXITING (those still block convergence)."""
    unreachable = state.unreachable()
    return frozenset(
        m.uuid
        for m in state.members
        if m.uuid in unreachable and m.status not in (MemberStatus.DOWN, MemberStatus.EXITING)
    )


def voting_members(
    state: MembershipState, last_converged: dict[str, Address]
) -> dict[str, Address]:
    """Who counts for keep-majority: the last converged membership plus every current member not
    DOWN or EXITING, less removed ones.

    A node's own "last converged" view can be stale or empty right after joins; counting the
    current members too keeps a side from overestimating its share (which would let both sides
    of a partition believe they hold the majority).
    """
    voters = {
        uuid: address for uuid, address in last_converged.items() if not state.is_tombstoned(uuid)
    }
    for member in state.members:
        if member.status < MemberStatus.EXITING:
            voters[member.uuid] = member.address
    return voters


def keep_majority(
    voters: dict[str, Address],
    unreachable: frozenset[str],
    stable_for: float,
    down_after: float,
) -> Decision:
    """Decide by strict majority of ``voters`` (uuid -> address, see ``voting_members``).

    A tie keeps the side holding the lowest address. Both sides of a partition count the same
    membership, so at most one side stays alive.
    """
    total = len(voters)
    reachable = sum(1 for uuid in voters if uuid not in unreachable)
    if not unreachable or stable_for < down_after:
        verdict = Verdict.WAIT
    elif 2 * reachable > total or (2 * reachable == total and _lowest(voters) not in unreachable):
        verdict = Verdict.DOWN_UNREACHABLE
    else:
        verdict = Verdict.DOWN_SELF
    return Decision(
        verdict=verdict, unreachable=unreachable, reachable_count=reachable, total=total
    )


def _lowest(members: dict[str, Address]) -> str | None:
    return min(members, key=lambda uuid: (members[uuid], uuid), default=None)
