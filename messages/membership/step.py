"""A member's protocol as one pure function: ``step(node, input, now) -> (node, effects)``.

The inputs and effects are in ``messages.membership.effects``; the rules in ``node`` (joining,
gossip, adopting, leaving), ``inbound`` (answers to wire messages), ``detection``
(heartbeats, downing) and ``probing`` (confirmation through relays). Same node, input and
``now``: same result, always.
"""

from __future__ import annotations

from messages.membership.detection import (
    discount_own_pause,
    heartbeat_tick,
    leader_tick,
    monitored_members,
)
from messages.membership.effects import (
    DownMember,
    Effect,
    GossipTick,
    HeartbeatTick,
    Inbound,
    Input,
    JoinAttempt,
    JoinCluster,
    Leave,
    LeaveMember,
    LeaveTimedOut,
    PeerGone,
    ProbeTick,
    SeedsFound,
)
from messages.membership.inbound import receive
from messages.membership.node import NodeState, Step
from messages.membership.probing import peer_gone, probe_tick

__all__ = ["step"]


def step(node: NodeState, message: Input, now: float) -> tuple[NodeState, tuple[Effect, ...]]:
    """Take one input at ``now`` (seconds, monotonic): the member's next state and what it must
    do, in order. A member that is out of the cluster (``termination`` set) does nothing more:
    it must not answer a join or a heartbeat in the moment before its node stops."""
    if node.termination is not None:
        return node, ()
    run = Step(node, now)
    active = node.running
    if active:
        discount_own_pause(run)
    match message:
        case Inbound():
            receive(run, message)
        case GossipTick() if active:
            leader_tick(run)
            run.gossip_tick()
        case HeartbeatTick() if active:
            heartbeat_tick(run)
        case ProbeTick() if active:
            probe_tick(run, monitored_members(run.state))
        case PeerGone() if active:
            peer_gone(run, message, monitored_members(run.state))
        case JoinAttempt():
            run.try_join()
            leader_tick(run)
        case JoinCluster(seeds=seeds, discovery=discovery):
            run.start_join(seeds, discovery)
            leader_tick(run)
        case SeedsFound(seeds=seeds):
            run.seeds_found(seeds)
        case Leave():
            run.leave()
            leader_tick(run)
        case LeaveTimedOut():
            run.give_up_leaving()
        case LeaveMember(address=address) if active:
            run.leave_member(address)
            leader_tick(run)
        case DownMember(address=address) if active:
            run.down_member(address)
            leader_tick(run)
        case _:
            pass  # a timer of a member that has stopped
    run.hasten_gossip()
    return run.result()
