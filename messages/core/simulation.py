"""A deterministic, seeded simulation of push-pull gossip over the pure membership core.

No sockets, no threads, no clock: N member states in a list, rounds in which every member gossips
with one peer. Tests and the benchmark use it to check that one change spreads in O(log N) rounds.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Literal

import msgspec

from messages.address import Address
from messages.core.leader import leader_actions
from messages.core.state import MembershipState
from messages.member import Member, MemberStatus

Change = Literal["leave", "unreachable"]


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """How a change spread.

    ``rounds``: rounds until every member holds the new version (and so has seen it).
    ``seen_rounds``: rounds until every member's state records that all have seen it (the point
    where a leader could act). ``messages``: states sent (pushes and replies) in all those rounds.
    """

    rounds: int
    messages: int
    seen_rounds: int


def converged_cluster(n: int, host: str = "10.0.0.1", base_port: int = 5701) -> MembershipState:
    """The state of an n-member cluster, all UP, seen by all, built by the core's own rules.

    The first member forms the cluster, admits the others, and as leader moves them all to UP.
    Members have the uuids ``member-00000``, ``member-00001``, ... at consecutive ports.
    """
    if n < 1:
        raise ValueError(f"A cluster needs at least one member, got n={n}")
    members = [
        Member.create(Address(host, base_port + i), member_uuid=f"member-{i:05d}") for i in range(n)
    ]
    seed = members[0].uuid
    state = leader_actions(MembershipState.initial(members[0]), seed, now=0.0)
    for member in members[1:]:
        state = state.add_joining(member, by=seed)
    state = leader_actions(state, seed, now=0.0)
    return msgspec.structs.replace(state, seen=frozenset(m.uuid for m in members))


def simulate_convergence(
    n: int,
    seed: int = 0,
    *,
    unseen_bias: float = 0.8,
    change: Change = "leave",
    max_rounds: int | None = None,
) -> SimulationResult:
    """Apply one change at one member of a converged n-member cluster and gossip until all agree.

    ``change`` is "leave" (a member marks itself LEAVING) or "unreachable" (a member marks a peer
    unreachable). In a round every member, in a seeded random order, picks a peer (with probability
    ``unseen_bias`` one that has not seen its version, if any) and does push-pull. Raises
    RuntimeError if the cluster has not converged after ``max_rounds`` (default 10 * log2(n) + 20).
    """
    if n < 2:
        raise ValueError(f"Gossip needs at least two members, got n={n}")
    if not 0.0 <= unseen_bias <= 1.0:
        raise ValueError(f"unseen_bias must be within 0..1, got {unseen_bias}")
    limit = max_rounds if max_rounds is not None else 10 * math.ceil(math.log2(n)) + 20
    rng = random.Random(seed)
    cluster = converged_cluster(n)
    uuids = [member.uuid for member in cluster.members]
    states = [cluster] * n
    changer = rng.randrange(n)
    states[changer] = _apply_change(cluster, change, uuids[changer], uuids[_other(changer, n, rng)])
    target = states[changer].version
    order = list(range(n))
    messages = rounds = spread_rounds = 0
    while True:
        if rounds >= limit:
            raise RuntimeError(f"{n} members did not converge within {limit} gossip rounds")
        rng.shuffle(order)
        for sender in order:
            peer = _pick_peer(sender, states[sender], uuids, unseen_bias, rng)
            messages += _push_pull(states, uuids, sender, peer)
        rounds += 1
        if not spread_rounds and all(state.version == target for state in states):
            spread_rounds = rounds
        if spread_rounds and all(len(state.seen) == n for state in states):
            return SimulationResult(rounds=spread_rounds, messages=messages, seen_rounds=rounds)


def _apply_change(
    state: MembershipState, change: Change, actor: str, subject: str
) -> MembershipState:
    if change == "leave":
        return state.set_status(actor, MemberStatus.LEAVING, by=actor)
    if change == "unreachable":
        return state.set_reachability(actor, frozenset({subject}))
    raise ValueError(f"Unknown change {change!r}: expected 'leave' or 'unreachable'")


def _other(index: int, n: int, rng: random.Random) -> int:
    """A uniformly random index in range(n) other than ``index``."""
    other = rng.randrange(n - 1)
    return other if other < index else other + 1


def _pick_peer(
    sender: int, state: MembershipState, uuids: list[str], unseen_bias: float, rng: random.Random
) -> int:
    """A peer for ``sender``: with probability ``unseen_bias`` one that has not seen its version."""
    n = len(uuids)
    seen = state.seen
    if len(seen) < n and rng.random() < unseen_bias:
        if 2 * len(seen) < n:
            while True:  # rejection sampling: more than half qualify, so this ends fast
                candidate = rng.randrange(n)
                if uuids[candidate] not in seen:
                    return candidate
        unseen = [i for i, uuid in enumerate(uuids) if uuid not in seen]
        return rng.choice(unseen)
    return _other(sender, n, rng)


def _push_pull(states: list[MembershipState], uuids: list[str], sender: int, peer: int) -> int:
    """Send the sender's state to the peer; the peer replies with its own if it differs.

    Returns the number of messages sent.
    """
    pushed = states[sender]
    received, _ = states[peer].receive(pushed, uuids[peer])
    states[peer] = received
    if received.version == pushed.version and received.seen == pushed.seen:
        return 1
    states[sender], _ = pushed.receive(received, uuids[sender])
    return 2
