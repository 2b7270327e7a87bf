"""The leader's moves: what the first reachable member does once a state has converged."""

from __future__ import annotations

from messages.member import Member, MemberStatus
from messages.membership.merging import merge_tombstones, without_subjects
from messages.membership.state import REMOVABLE, MembershipState

__all__ = ["leader_actions", "prune_tombstones"]


def leader_actions(state: MembershipState, self_uuid: str, now: float) -> MembershipState:
    """The leader's moves at convergence, as one local change by the leader.

    JOINING -> UP (next up_numbers, in address order), LEAVING -> EXITING, and EXITING/DOWN members
    removed: tombstoned at ``now`` and pruned from seen, the version and the reachability table.
    Returns ``state`` itself unless ``self_uuid`` leads a converged state and something moves.
    """
    leader = state.leader()
    if leader is None or leader.uuid != self_uuid or not state.is_converged():
        return state
    removed = frozenset(m.uuid for m in state.members if m.status in REMOVABLE)
    next_up_number = state.next_up_number()
    members: list[Member] = []
    for member in state.members:
        if member.uuid in removed:
            continue
        if member.status is MemberStatus.JOINING:
            members.append(member.with_status(MemberStatus.UP, next_up_number))
            next_up_number += 1
        elif member.status is MemberStatus.LEAVING:
            members.append(member.with_status(MemberStatus.EXITING))
        else:
            members.append(member)
    if not removed and members == list(state.members):
        return state
    if not removed:
        return state.local_change(self_uuid, members=tuple(members))
    return state.local_change(
        self_uuid,
        members=tuple(members),
        tombstones=merge_tombstones(state.tombstones, tuple((u, now) for u in sorted(removed))),
        reachability=tuple(
            without_subjects(row, removed)
            for row in state.reachability
            if row.observer not in removed
        ),
        version=state.version.without(removed),
    )


def prune_tombstones(state: MembershipState, now: float, ttl: float) -> MembershipState:
    """Forget tombstones older than ``ttl`` seconds (after that a stale state could resurrect)."""
    if ttl < 0:
        raise ValueError(f"Tombstone ttl must not be negative, got {ttl}")
    kept = tuple(t for t in state.tombstones if t[1] + ttl > now)
    if len(kept) == len(state.tombstones):
        return state
    return state.replaced(tombstones=kept)
