"""Tests of the deterministic push-pull gossip simulation (messages/core/simulation.py)."""

from __future__ import annotations

import math

import pytest

from messages import Address, MemberStatus
from messages.core.simulation import SimulationResult, converged_cluster, simulate_convergence


def test_converged_cluster_is_all_up_in_address_order_and_seen_by_all() -> None:
    state = converged_cluster(5, host="10.1.2.3", base_port=7000)
    assert [(m.uuid, m.address, m.status, m.up_number) for m in state.members] == [
        (f"member-{i:05d}", Address("10.1.2.3", 7000 + i), MemberStatus.UP, i + 1) for i in range(5)
    ]
    assert state.seen == frozenset(m.uuid for m in state.members)
    assert state.is_converged()
    assert state.leader() == state.members[0]
    assert state.unreachable() == frozenset()


def test_converged_cluster_rejects_an_empty_cluster() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        converged_cluster(0)


@pytest.mark.parametrize("seed", range(10))
def test_a_leave_reaches_100_members_in_logarithmic_rounds(seed: int) -> None:
    result = simulate_convergence(100, seed)
    # log2(100) is about 6.6; push-pull spreads in ~5 rounds, the seen sets in ~9.
    assert result.rounds <= 8
    assert result.seen_rounds <= 14
    assert result.rounds < result.seen_rounds
    assert 99 <= result.messages <= 2 * 100 * result.seen_rounds


@pytest.mark.parametrize("change", ["leave", "unreachable"])
@pytest.mark.parametrize("unseen_bias", [0.0, 0.8, 1.0])
def test_every_change_and_bias_converges(change: str, unseen_bias: float) -> None:
    result = simulate_convergence(30, 7, unseen_bias=unseen_bias, change=change)  # type: ignore[arg-type]
    assert result.rounds <= 2 * math.ceil(math.log2(30))


def test_same_seed_gives_the_same_result() -> None:
    assert simulate_convergence(100, seed=42) == simulate_convergence(100, seed=42)
    results = {simulate_convergence(100, seed=s) for s in range(6)}
    assert len(results) > 1  # the seed does steer the run


def test_two_members_agree_in_one_round() -> None:
    # With seed 1 the changed member gossips first: its push is adopted, the peer replies (its
    # seen set differs), and the peer's own push then changes nothing and gets no reply.
    assert simulate_convergence(2, seed=1) == SimulationResult(rounds=1, messages=3, seen_rounds=1)


def test_non_convergence_is_reported_not_looped() -> None:
    with pytest.raises(RuntimeError, match="did not converge within 1 gossip rounds"):
        simulate_convergence(100, max_rounds=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 1}, "at least two members"),
        ({"n": 10, "unseen_bias": 1.5}, "unseen_bias"),
        ({"n": 10, "change": "explode"}, "Unknown change 'explode'"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_convergence(**kwargs)  # type: ignore[arg-type]
