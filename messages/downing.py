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


def pending_unreachable(state: MembershipState) -> frozenset[str]:
    """Unreachable members not yet DOWN or EXITING (those still block convergence)."""
    unreachable = state.unreachable()
    return frozenset(
        m.uuid
        for m in state.members
        if m.uuid in unreachable and m.status not in (MemberStatus.DOWN, MemberStatus.EXITING)
    )


def keep_majority(
    last_converged: dict[str, Address],
    unreachable: frozenset[str],
    stable_for: float,
    down_after: float,
) -> Decision:
    """Decide by strict majority of the last converged membership (uuid -> address).

    A tie keeps the side holding the lowest address. Both sides of a partition decide from the same
    converged membership, so at most one side stays alive.
    """
    total = len(last_converged)
    reachable = sum(1 for uuid in last_converged if uuid not in unreachable)
    if not unreachable or stable_for < down_after:
        verdict = Verdict.WAIT
    elif 2 * reachable > total or (
        2 * reachable == total and _lowest(last_converged) not in unreachable
    ):
        verdict = Verdict.DOWN_UNREACHABLE
    else:
        verdict = Verdict.DOWN_SELF
    return Decision(
        verdict=verdict, unreachable=unreachable, reachable_count=reachable, total=total
    )


def _lowest(members: dict[str, Address]) -> str | None:
    return min(members, key=lambda uuid: (members[uuid], uuid), default=None)
