"""Pure gossip choices: whom to gossip with, what to send, and how often."""

from __future__ import annotations

from messages.member import Member, MemberStatus
from messages.membership.entropy import Random
from messages.membership.state import LEAVING, UP, MembershipState
from messages.settings import Settings

__all__ = ["GOSSIP_TARGET_STATUSES", "choose_gossip_peer", "gossip_peers", "needs_fast_gossip"]

GOSSIP_TARGET_STATUSES = frozenset(
    {MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING, MemberStatus.EXITING}
)
_LAN = Settings.lan()
_CONVERGING = frozenset({UP, LEAVING})


def gossip_peers(state: MembershipState, self_uuid: str) -> tuple[Member, ...]:
    """Members worth gossiping with: live, not self, and reachable by *this* node's own row.

    Not by the union of every observer's rows: after a partition heals, gossip brings each side's
    rows across, the union then marks everyone unreachable until the rows cleared by the resumed
    heartbeats have spread, and gossip is what spreads them (Akka chooses its targets the same way).
    """
    silent = state.reachability_row(self_uuid)
    return tuple(
        m
        for m in state.members
        if m.uuid != self_uuid and m.status in GOSSIP_TARGET_STATUSES and m.uuid not in silent
    )


def choose_gossip_peer(
    state: MembershipState,
    self_uuid: str,
    rng: Random,
    unseen_bias: float = _LAN.gossip_unseen_bias,
) -> Member | None:
    """One peer, preferring those that have not seen this version.

    The preference holds with probability ``unseen_bias``.
    """
    peers = gossip_peers(state, self_uuid)
    if not peers:
        return None
    if rng.random() < unseen_bias:
        unseen = [m for m in peers if m.uuid not in state.seen]
        if unseen:
            return rng.choice(unseen)
    return rng.choice(peers)


def needs_fast_gossip(state: MembershipState) -> bool:
    """True while some UP/LEAVING member has not seen the current version: gossip faster
    (``Settings.fast_gossip_factor`` times as often).

    The brief says "while fewer than half have seen it"; keeping the fast rate until everyone has
    seen the version lets the leader learn of convergence (and act on it) a second sooner.
    """
    return any(m.status in _CONVERGING and m.uuid not in state.seen for m in state.members)
