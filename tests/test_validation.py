"""Validation of wire input: honest states pass, each inconsistency is named, the core is total."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_strategies import (
    BROKEN_STATES,
    UUID_POOL,
    any_states,
    plausible_states,
    removed_but_unreachable,
)
from test_state_properties import Cluster, histories

from messages import Address, Member, MemberStatus, VectorClock
from messages.membership.changes import diff
from messages.membership.downing import down_members, pending_unreachable
from messages.membership.gossip import choose_gossip_peer
from messages.membership.leader import leader_actions
from messages.membership.protocol import (
    ClientUpdate,
    Gossip,
    GossipStatus,
    Join,
    ProbeRequest,
    ProbeResult,
    Suspect,
    Welcome,
)
from messages.membership.state import MembershipState, merge
from messages.membership.validation import InvalidMessage, validate, validate_state
from messages.testing.simulator import converged_cluster

A, B, C = (f"member-{i:05d}" for i in range(3))
STRANGER = "member-99999"


@pytest.mark.parametrize("rule", list(BROKEN_STATES))
def test_each_inconsistency_is_refused_by_name(rule: str) -> None:
    state = BROKEN_STATES[rule](converged_cluster(3))

    with pytest.raises(InvalidMessage) as refused:
        validate_state(state)

    assert refused.value.rule == rule
    assert rule in str(refused.value)


def test_the_state_that_crashed_leaders_is_refused() -> None:
    """A REMOVED member that some observer marks unreachable: the leader's downing raised."""
    state = removed_but_unreachable(converged_cluster(3))

    with pytest.raises(InvalidMessage, match="no-removed-members"):
        validate(Gossip(from_uuid=A, to_uuid=B, state=state), B)


def test_messages_are_checked_in_their_context() -> None:
    state = converged_cluster(3)
    validate(Gossip(from_uuid=A, to_uuid=B, state=state), B)
    with pytest.raises(InvalidMessage, match="sender-in-state"):
        validate(Gossip(from_uuid=STRANGER, to_uuid=B, state=state), B)
    validate(Welcome(state=state), C)
    with pytest.raises(InvalidMessage, match="welcome-holds-joiner"):
        validate(Welcome(state=state), STRANGER)
    with pytest.raises(InvalidMessage, match="no-removed-members"):
        validate(ClientUpdate(state=removed_but_unreachable(state)), STRANGER)
    joiner = Member.create(Address("127.0.0.1", 9000))
    validate(Join(member=joiner), A)
    with pytest.raises(InvalidMessage, match="joiner-is-joining"):
        validate(Join(member=joiner.with_status(MemberStatus.UP, up_number=3)), A)
    validate(GossipStatus(from_uuid=A, to_uuid=B, version=VectorClock(), seen=frozenset()), B)
    validate(GossipStatus(A, B, VectorClock(), frozenset(), unseen=frozenset({C})), B)
    with pytest.raises(InvalidMessage, match="status-seen-or-unseen"):
        validate(GossipStatus(A, B, VectorClock(), frozenset({A}), unseen=frozenset({C})), B)


def test_a_probe_names_three_different_members_and_a_suspicion_two() -> None:
    validate(ProbeRequest(from_uuid=A, to_uuid=B, target_uuid=C, nonce=1), B)
    validate(ProbeResult(from_uuid=B, to_uuid=A, target_uuid=C, nonce=1, alive=False), A)
    validate(Suspect(from_uuid=A, to_uuid=C, nonce=1), C)
    for sender, relay, target in ((A, B, A), (A, B, B), (A, A, C)):
        with pytest.raises(InvalidMessage, match="probe-members-distinct"):
            validate(ProbeRequest(from_uuid=sender, to_uuid=relay, target_uuid=target, nonce=1), B)
        result = ProbeResult(
            from_uuid=relay, to_uuid=sender, target_uuid=target, nonce=1, alive=True
        )
        with pytest.raises(InvalidMessage, match="probe-members-distinct"):
            validate(result, A)
    with pytest.raises(InvalidMessage, match="suspect-not-itself"):
        validate(Suspect(from_uuid=C, to_uuid=C, nonce=1), C)


@settings(max_examples=100, deadline=None)
@given(histories(), st.data())
def test_every_state_the_core_builds_is_valid(cluster: Cluster, data: st.DataObject) -> None:
    for state in cluster.all_states:
        validate_state(state)
    a = data.draw(st.sampled_from(cluster.all_states))
    b = data.draw(st.sampled_from(cluster.all_states))
    validate_state(merge(a, b))
    for uuid in (m.uuid for m in a.members):
        validate_state(a.receive(b, uuid)[0])


@settings(max_examples=300, deadline=None)
@given(any_states(), any_states(), st.sampled_from(UUID_POOL), st.floats(0, 1e9))
def test_the_core_is_total_on_any_decodable_state(
    state: MembershipState, other: MembershipState, self_uuid: str, now: float
) -> None:
    """Leader actions, downing, peer choice, diffing and merging never raise, valid or not."""
    leader_actions(state, self_uuid, now)
    down_members(state, pending_unreachable(state), by=self_uuid)
    choose_gossip_peer(state, self_uuid, random.Random(0))
    diff(other, state, 1)
    merge(state, other)
    state.removal_reason(self_uuid)
    try:
        validate_state(state)
    except InvalidMessage:
        return
    if state.member(self_uuid) is not None:  # what the actor does with a state it accepted
        leader_actions(state.receive(other, self_uuid)[0], self_uuid, now)


@settings(max_examples=100, deadline=None)
@given(plausible_states())
def test_plausible_states_pass_validation(state: MembershipState) -> None:
    validate_state(state)
