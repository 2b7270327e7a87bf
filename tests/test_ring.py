"""The heartbeat ring: targets, their inverse, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.membership.ring import heartbeat_targets, monitored_by

MEMBERS = tuple(f"member-{n}" for n in range(12))


def test_targets_are_stable_across_calls_and_input_order() -> None:
    first = heartbeat_targets("member-3", MEMBERS)

    assert heartbeat_targets("member-3", MEMBERS) == first
    assert heartbeat_targets("member-3", reversed(MEMBERS)) == first
    assert heartbeat_targets("member-3", iter(MEMBERS)) == first
    assert heartbeat_targets("member-3", [*MEMBERS, *MEMBERS]) == first


def test_targets_are_the_same_in_processes_with_different_hash_seeds() -> None:
    script = (
        "import json, sys; from messages.membership.ring import heartbeat_targets; "
        "members = [f'member-{n}' for n in range(12)]; "
        "print(json.dumps([heartbeat_targets(m, members) for m in members]))"
    )
    expected = [list(heartbeat_targets(member, MEMBERS)) for member in MEMBERS]

    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert json.loads(result.stdout) == expected


def test_ring_order_is_not_the_order_of_the_ids() -> None:
    in_id_order = tuple(sorted(MEMBERS)[1:6])

    assert heartbeat_targets(sorted(MEMBERS)[0], MEMBERS) != in_id_order


def test_self_is_excluded_and_targets_are_distinct() -> None:
    for member in MEMBERS:
        targets = heartbeat_targets(member, MEMBERS, k=11)
        assert member not in targets
        assert len(set(targets)) == len(targets) == 11


def test_k_bounds_the_number_of_targets() -> None:
    assert len(heartbeat_targets("member-0", MEMBERS, k=1)) == 1
    assert len(heartbeat_targets("member-0", MEMBERS)) == 5
    assert len(heartbeat_targets("member-0", MEMBERS, k=9)) == 9


def test_fewer_members_than_k_gives_every_other_member() -> None:
    assert set(heartbeat_targets("a", ["a", "b", "c"], k=5)) == {"b", "c"}
    assert heartbeat_targets("a", ["a"]) == ()
    assert heartbeat_targets("a", []) == ()


def test_self_takes_its_place_on_the_ring_when_not_listed() -> None:
    others = [member for member in MEMBERS if member != "member-7"]

    assert heartbeat_targets("member-7", others) == heartbeat_targets("member-7", MEMBERS)


def test_smaller_k_gives_a_prefix_of_larger_k() -> None:
    assert heartbeat_targets("member-2", MEMBERS, k=9)[:3] == heartbeat_targets(
        "member-2", MEMBERS, k=3
    )


def test_targets_walk_the_ring_one_step_at_a_time() -> None:
    nearest = heartbeat_targets("member-5", MEMBERS, k=1)[0]

    assert heartbeat_targets("member-5", MEMBERS, k=4)[1:] == heartbeat_targets(
        nearest, MEMBERS, k=3
    )


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_rejected(k: int) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        heartbeat_targets("a", ["a", "b"], k=k)
    with pytest.raises(ValueError, match="k must be at least 1"):
        monitored_by("a", ["a", "b"], k=k)


def test_bad_argument_types_are_rejected() -> None:
    with pytest.raises(TypeError, match="not a single str"):
        heartbeat_targets("a", "abc")
    with pytest.raises(TypeError, match="member ids must be str"):
        heartbeat_targets("a", ["b", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="k must be an int"):
        heartbeat_targets("a", ["b"], k=2.0)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    member_ids=st.sets(st.text(min_size=1, max_size=8), min_size=1, max_size=25),
    k=st.integers(min_value=1, max_value=10),
)
def test_every_member_is_monitored_by_min_k_n_minus_one_others(
    member_ids: set[str], k: int
) -> None:
    targets = {member: heartbeat_targets(member, member_ids, k) for member in member_ids}
    expected = min(k, len(member_ids) - 1)
    times_monitored = Counter(target for chosen in targets.values() for target in chosen)

    for member in member_ids:
        assert len(targets[member]) == expected
        assert member not in targets[member]
        assert times_monitored[member] == expected
        assert set(monitored_by(member, member_ids, k)) == {
            monitor for monitor, chosen in targets.items() if member in chosen
        }


def test_unreachable_targets_are_kept_but_not_counted() -> None:
    plain = heartbeat_targets("member-0", MEMBERS, k=9)
    unreachable = frozenset(plain[:2])
    extended = heartbeat_targets("member-0", MEMBERS, k=3, unreachable=unreachable)
    assert extended == plain[:5]  # the two unreachable ones, then three that count
    assert len([m for m in extended if m not in unreachable]) == 3


def test_a_partitioned_far_side_is_still_watched_from_this_side() -> None:
    """Ten members, k = 3: whatever half is unreachable, every one of it is the target of some
    member of the other half, so no far-side member goes unwatched (and unheard when it heals)."""
    far = frozenset(MEMBERS[:6])
    near = [m for m in MEMBERS if m not in far]
    watched = {t for m in near for t in heartbeat_targets(m, MEMBERS, k=3, unreachable=far)}
    assert far <= watched


def test_when_everyone_else_is_unreachable_every_member_is_a_target() -> None:
    others = frozenset(MEMBERS[1:])
    assert set(heartbeat_targets("member-0", MEMBERS, k=2, unreachable=others)) == others
