"""Property tests of the membership core over random cluster histories (hypothesis).

A history starts from a small converged cluster; at each step a random live node makes a local
change (join a newcomer or a restarted incarnation, leave, down a peer, change its reachability
row, run leader actions) or gossips push-pull with another live node. Every state any node held
is kept, and the laws are checked on them.
"""

from __future__ import annotations

import dataclasses
import itertools

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from messages import (
    Address,
    ClusterEvent,
    CurrentClusterState,
    LeaderChanged,
    Member,
    MemberDowned,
    MemberEvent,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberReachable,
    MemberRemoved,
    MemberStatus,
    MemberUnreachable,
    MemberUp,
)
from messages.membership.changes import cluster_state, diff
from messages.membership.leader import leader_actions
from messages.membership.state import MembershipState, merge
from messages.testing.simulator import converged_cluster

STATUS_OF_EVENT: dict[type[MemberEvent], MemberStatus] = {
    MemberJoined: MemberStatus.JOINING,
    MemberUp: MemberStatus.UP,
    MemberLeft: MemberStatus.LEAVING,
    MemberExited: MemberStatus.EXITING,
    MemberDowned: MemberStatus.DOWN,
    MemberRemoved: MemberStatus.REMOVED,
}
LIVE = (MemberStatus.JOINING, MemberStatus.UP, MemberStatus.LEAVING, MemberStatus.EXITING)
OPERATIONS = ("gossip", "gossip", "sweep", "join", "leave", "down", "reachability", "lead", "lead")


@dataclasses.dataclass
class Cluster:
    """Every node's history of states, and every state any node ever held."""

    histories: dict[str, list[MembershipState]]
    all_states: list[MembershipState]

    def state(self, uuid: str) -> MembershipState:
        return self.histories[uuid][-1]

    def live_nodes(self) -> list[str]:
        return sorted(u for u, h in self.histories.items() if h[-1].member(u) is not None)

    def record(self, uuid: str, state: MembershipState) -> None:
        if state is not self.histories[uuid][-1]:
            self.histories[uuid].append(state)
            self.all_states.append(state)

    def push_pull(self, sender: str, peer: str) -> None:
        received, _ = self.state(peer).receive(self.state(sender), peer)
        self.record(peer, received)
        replied, _ = self.state(sender).receive(received, sender)
        self.record(sender, replied)


def apply_step(
    cluster: Cluster, data: st.DataObject, step: int, operations: tuple[str, ...] = OPERATIONS
) -> None:
    """One random step at one random live node.

    "down" downs any member at any node, which only a leader on the majority side of a partition
    does in a running cluster; leave it out of ``operations`` to keep to what happens without one.
    """
    live = cluster.live_nodes()
    node = data.draw(st.sampled_from(live))
    state = cluster.state(node)
    others = [m for m in state.members if m.uuid != node]
    operation = data.draw(st.sampled_from(operations))
    if operation == "gossip" and len(live) > 1:
        cluster.push_pull(node, data.draw(st.sampled_from([u for u in live if u != node])))
    elif operation == "sweep" and len(live) > 1:  # a gossip round: every live node with a peer
        for sender in live:
            peer = data.draw(st.sampled_from([u for u in live if u != sender]))
            if sender in cluster.live_nodes() and peer in cluster.live_nodes():
                cluster.push_pull(sender, peer)
    elif operation == "join":
        restart = bool(others) and data.draw(st.booleans())
        address = data.draw(st.sampled_from(others)).address if restart else Address("h", step)
        newcomer = Member.create(address, member_uuid=f"n{step}")
        welcomed = state.add_joining(newcomer, by=node)
        cluster.record(node, welcomed)
        cluster.histories[newcomer.uuid] = [welcomed.seen_by(newcomer.uuid)]
        cluster.all_states.append(cluster.histories[newcomer.uuid][0])
    elif operation == "leave" and state.member(node).status in LIVE[:2]:  # type: ignore[union-attr]
        cluster.record(node, state.set_status(node, MemberStatus.LEAVING, by=node))
    elif operation == "down" and others:
        target = data.draw(st.sampled_from(others))
        if target.status in LIVE:
            cluster.record(node, state.set_status(target.uuid, MemberStatus.DOWN, by=node))
    elif operation == "reachability":
        subjects = data.draw(st.sets(st.sampled_from([m.uuid for m in others] or [node])))
        cluster.record(node, state.set_reachability(node, subjects - {node}))
    elif operation == "lead":  # at the node that node takes for the leader, if it is live
        leader = state.leader()
        if leader is not None and leader.uuid in live:
            cluster.record(
                leader.uuid, leader_actions(cluster.state(leader.uuid), leader.uuid, float(step))
            )


@st.composite
def histories(draw: st.DrawFn, operations: tuple[str, ...] = OPERATIONS) -> Cluster:
    size = draw(st.integers(min_value=2, max_value=4))
    start = converged_cluster(size)
    cluster = Cluster({m.uuid: [start] for m in start.members}, [start])
    data = draw(st.data())
    for step in range(draw(st.integers(min_value=5, max_value=40))):
        if not cluster.live_nodes():
            break  # every node removed itself (the "down" step downs anyone, sides included)
        apply_step(cluster, data, step, operations)
    return cluster


def settle(cluster: Cluster) -> None:
    """Gossip every live pair until no state changes (no new local changes meanwhile)."""
    for _ in range(10):
        before = {u: h[-1] for u, h in cluster.histories.items()}
        for sender, peer in itertools.permutations(cluster.live_nodes(), 2):
            if sender in cluster.live_nodes() and peer in cluster.live_nodes():
                cluster.push_pull(sender, peer)
        if all(cluster.state(u) is s for u, s in before.items()):
            return
    raise AssertionError("gossip did not settle")


def without_seen(state: MembershipState) -> MembershipState:
    return msgspec.structs.replace(state, seen=frozenset())


def replay(events: list[ClusterEvent]) -> tuple[dict[str, Member], frozenset[str], Address | None]:
    """What a listener rebuilds from the events alone."""
    members: dict[str, Member] = {}
    unreachable: set[str] = set()
    leader = None
    for event in events:
        match event:
            case MemberRemoved(member=member):
                del members[member.uuid]
                unreachable.discard(member.uuid)
            case MemberUnreachable(member=member):
                unreachable.add(member.uuid)
            case MemberReachable(member=member):
                unreachable.remove(member.uuid)
            case MemberEvent(member=member):
                members[member.uuid] = member
            case LeaderChanged(leader=address):
                leader = address
    return members, frozenset(unreachable), leader


def snapshot_view(
    snapshot: CurrentClusterState,
) -> tuple[dict[str, Member], frozenset[str], Address | None]:
    return {m.uuid: m for m in snapshot.members}, snapshot.unreachable, snapshot.leader


def without_up_number(members: dict[str, Member]) -> dict[str, tuple[Member, bool]]:
    """Members with up_number reduced to "has been up".

    Two leaders on either side of a partition can number the same member differently; the merge
    keeps the older number and no event reports that renumbering.
    """
    return {u: (m.with_status(m.status, 0), m.up_number > 0) for u, m in members.items()}


SETTINGS = settings(max_examples=60, deadline=None)
indices = st.integers(min_value=0, max_value=10_000)


@SETTINGS
@given(histories(), indices, indices, indices)
def test_merge_is_commutative_associative_and_idempotent(
    cluster: Cluster, i: int, j: int, k: int
) -> None:
    states = cluster.all_states
    a, b, c = states[i % len(states)], states[j % len(states)], states[k % len(states)]
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == without_seen(a)
    assert merge(a, merge(a, b)) == merge(a, b)


@SETTINGS
@given(histories(), indices, indices)
def test_tombstoned_members_never_reappear(cluster: Cluster, i: int, j: int) -> None:
    states = cluster.all_states
    a, b = states[i % len(states)], states[j % len(states)]
    buried = {u for u, _ in a.tombstones} | {u for u, _ in b.tombstones}
    for result in (merge(a, b), a.receive(b, "x")[0], b.receive(a, "x")[0]):
        assert buried.isdisjoint(m.uuid for m in result.members)
        assert buried.isdisjoint(result.version.timestamps)
    for history in cluster.histories.values():
        gone: set[str] = set()
        for state in history:
            assert gone.isdisjoint(m.uuid for m in state.members)
            gone |= {u for u, _ in state.tombstones}


@SETTINGS
@given(histories())
def test_events_of_each_node_are_unique_ordered_and_rebuild_the_state(cluster: Cluster) -> None:
    for history in cluster.histories.values():
        events: list[ClusterEvent] = list(diff(MembershipState(), history[0], 0))
        for version, (old, new) in enumerate(itertools.pairwise(history), start=1):
            events.extend(diff(old, new, version))
        keys = [
            (event.member.uuid, STATUS_OF_EVENT[type(event)])
            for event in events
            if isinstance(event, MemberEvent) and type(event) in STATUS_OF_EVENT
        ]
        assert len(keys) == len(set(keys)), keys
        for uuid, status in keys:
            if status is MemberStatus.REMOVED and (uuid, MemberStatus.UP) in keys:
                assert keys.index((uuid, MemberStatus.UP)) < keys.index((uuid, status))
        members, unreachable, leader = replay(events)
        expected_members, expected_unreachable, expected_leader = snapshot_view(
            cluster_state(history[-1], len(history))
        )
        assert without_up_number(members) == without_up_number(expected_members)
        assert (unreachable, leader) == (expected_unreachable, expected_leader)


@SETTINGS
@given(histories())
def test_gossip_brings_live_nodes_to_one_state(cluster: Cluster) -> None:
    settle(cluster)
    finals = [cluster.state(u) for u in cluster.live_nodes()]
    assert all(state == finals[0] for state in finals)
    assert all(state.seen.issuperset(cluster.live_nodes()) for state in finals)
