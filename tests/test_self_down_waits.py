"""Step-level cases: when a member in a minority waits before it downs itself (issue 16).

A member that hears from a member its own row accuses (a heartbeat, gossip, anything) may be
watching the cut heal: the far side's messages arrive before its own heartbeats are answered
and its row is refreshed. It does not down itself just then, but only for an
``acceptable_heartbeat_pause`` past its stable window (messages/membership/detection.py).
"""

from __future__ import annotations

import dataclasses

from messages.membership.effects import GossipTick, Inbound
from messages.membership.node import NodeState
from messages.membership.protocol import Heartbeat
from messages.membership.publication import Publication
from messages.membership.step import step
from messages.settings import Settings
from messages.testing.simulator import converged_cluster
from messages.wire.handshake import Identity, Role

SETTINGS = Settings.lan()
UUIDS = [f"member-{i:05d}" for i in range(5)]  # converged_cluster's


def minority_member(since: float = 0.0) -> NodeState:
    """A (the first of five) whose row accuses C, D and E since ``since``: 2 of 5 reachable.
    Its last step was at ``down_after`` (so no step below finds it was paused)."""
    state = converged_cluster(5).set_reachability(UUIDS[0], frozenset(UUIDS[2:]))
    node = NodeState.create(state.members[0], SETTINGS, seed=1)
    published, _ = Publication().publish(state)
    return dataclasses.replace(
        node,
        published=published,
        running=True,
        last_step=SETTINGS.down_after,
        pending_unreachable=frozenset(UUIDS[2:]),
        unreachable_since=since,
    )


def heartbeat_from(sender: str) -> Inbound:
    message = Heartbeat(from_uuid=sender, to_uuid=UUIDS[0], sequence=1)
    return Inbound(message, 9, "peer", Identity(sender, Role.MEMBER))


def downed_itself(node: NodeState) -> bool:
    return node.termination is not None


def test_a_minority_member_downs_itself_once_the_window_has_passed() -> None:
    node, _ = step(minority_member(), GossipTick(), SETTINGS.down_after + 0.5)
    assert downed_itself(node)


def test_it_waits_while_it_hears_from_a_member_it_accuses() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[3]), at - 0.3)
    assert node.heard_accused == {UUIDS[3]: at - 0.3}
    node, _ = step(node, GossipTick(), at)
    assert not downed_itself(node)


def test_a_member_it_does_not_accuse_is_no_reason_to_wait() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[1]), at - 0.3)
    assert node.heard_accused == {}
    node, _ = step(node, GossipTick(), at)
    assert downed_itself(node)


def test_the_wait_ends_with_the_heartbeat_interval_or_an_acceptable_pause_past_the_window() -> None:
    at = SETTINGS.down_after + 0.5
    node, _ = step(minority_member(), heartbeat_from(UUIDS[3]), at - 0.3)
    later, _ = step(node, GossipTick(), at - 0.3 + SETTINGS.heartbeat_interval + 0.1)
    assert downed_itself(later)  # heard too long ago
    overdue = SETTINGS.down_after + SETTINGS.acceptable_heartbeat_pause + 0.1
    still, _ = step(minority_member(), heartbeat_from(UUIDS[3]), overdue - 0.3)
    still, _ = step(still, GossipTick(), overdue)
    assert downed_itself(still)  # a one-way cut: it hears them, they never answer
