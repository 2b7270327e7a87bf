"""VectorClock: the Hazelcast client's ``is_after`` truth table.

Also textbook ``compare``/``merge``, and laws.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.vector_clock import Causality, VectorClock


def vc(**timestamps: int) -> VectorClock:
    return VectorClock(dict(timestamps))


REPLICAS = st.sampled_from("abcd")
clocks = st.dictionaries(REPLICAS, st.integers(min_value=0, max_value=3)).map(VectorClock)
positive_clocks = st.dictionaries(REPLICAS, st.integers(min_value=1, max_value=3)).map(VectorClock)
law_settings = settings(max_examples=150, deadline=None)

MIRROR = {
    Causality.BEFORE: Causality.AFTER,
    Causality.AFTER: Causality.BEFORE,
    Causality.SAME: Causality.SAME,
    Causality.CONCURRENT: Causality.CONCURRENT,
}


@pytest.mark.parametrize(
    ("local", "other", "expected"),
    [
        pytest.param(vc(), vc(), False, id="empty-vs-empty"),
        pytest.param(vc(a=1), vc(), True, id="non-empty-vs-empty"),
        pytest.param(vc(), vc(a=1), False, id="empty-vs-non-empty"),
        pytest.param(vc(a=1, b=2), vc(a=1), True, id="superset-after-subset"),
        pytest.param(vc(a=1), vc(a=1, b=2), False, id="subset-not-after-superset"),
        pytest.param(vc(a=1, b=2), vc(a=1, b=2), False, id="equal"),
        pytest.param(vc(a=2, b=2), vc(a=1, b=2), True, id="one-greater-rest-equal"),
        pytest.param(vc(a=2, b=3), vc(a=1, b=2), True, id="all-greater"),
        pytest.param(vc(a=1, b=2), vc(a=2, b=2), False, id="one-smaller"),
        pytest.param(vc(a=2, b=1), vc(a=1, b=2), False, id="concurrent-forward"),
        pytest.param(vc(a=1, b=2), vc(a=2, b=1), False, id="concurrent-backward"),
        pytest.param(vc(a=1), vc(b=1), False, id="disjoint-forward"),
        pytest.param(vc(b=1), vc(a=1), False, id="disjoint-backward"),
        pytest.param(vc(a=5), vc(a=1, b=0), False, id="missing-local-entry-other-zero"),
        pytest.param(vc(a=1, b=0), vc(a=1), True, id="extra-zero-entry-is-after"),
        pytest.param(vc(a=1, b=1, c=1), vc(a=1, b=1), True, id="more-entries-equal-shared"),
        pytest.param(vc(a=1, b=1, c=1), vc(a=2, b=1), False, id="more-entries-one-smaller"),
    ],
)
def test_is_after_matches_hazelcast(local: VectorClock, other: VectorClock, expected: bool) -> None:
    assert local.is_after(other) is expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        pytest.param(vc(), vc(), Causality.SAME, id="empty"),
        pytest.param(vc(a=0), vc(), Causality.SAME, id="zero-entry-equals-missing"),
        pytest.param(vc(), vc(a=0), Causality.SAME, id="missing-equals-zero-entry"),
        pytest.param(vc(a=1, b=2), vc(b=2, a=1), Causality.SAME, id="equal"),
        pytest.param(vc(a=1), vc(a=2), Causality.BEFORE, id="before"),
        pytest.param(vc(), vc(a=1), Causality.BEFORE, id="missing-before-positive"),
        pytest.param(vc(a=2), vc(a=1), Causality.AFTER, id="after"),
        pytest.param(vc(a=1, b=1), vc(a=1), Causality.AFTER, id="extra-positive-entry"),
        pytest.param(vc(a=2, b=1), vc(a=1, b=2), Causality.CONCURRENT, id="concurrent"),
        pytest.param(vc(a=1), vc(b=1), Causality.CONCURRENT, id="disjoint"),
    ],
)
def test_compare_counts_missing_entries_as_zero(
    left: VectorClock, right: VectorClock, expected: Causality
) -> None:
    assert left.compare(right) is expected


def test_set_replica_timestamp_sets_in_place() -> None:
    clock = vc(a=1)
    clock.set_replica_timestamp("b", 4)
    clock.set_replica_timestamp("a", 7)
    assert clock.timestamps == {"a": 7, "b": 4}


def test_entry_set_size_and_get() -> None:
    clock = vc(a=1, b=2)
    assert clock.entry_set() == [("a", 1), ("b", 2)]
    assert all(isinstance(entry, tuple) for entry in clock.entry_set())
    assert clock.size() == 2
    assert vc().size() == 0
    assert clock.get("b") == 2
    assert clock.get("missing") == 0


def test_entry_set_is_a_snapshot() -> None:
    clock = vc(a=1)
    entries = clock.entry_set()
    clock.set_replica_timestamp("b", 1)
    assert entries == [("a", 1)]


def test_increment_returns_new_clock_and_leaves_original() -> None:
    clock = vc(a=1)
    assert clock.increment("a") == vc(a=2)
    assert clock.increment("b") == vc(a=1, b=1)
    assert clock == vc(a=1)


def test_merge_returns_new_clock_and_leaves_both_inputs() -> None:
    left, right = vc(a=3, b=1), vc(b=2, c=1)
    assert left.merge(right) == vc(a=3, b=2, c=1)
    assert left == vc(a=3, b=1)
    assert right == vc(b=2, c=1)


def test_copy_is_independent() -> None:
    clock = vc(a=1)
    duplicate = clock.copy()
    duplicate.set_replica_timestamp("a", 9)
    assert clock == vc(a=1)
    assert duplicate == vc(a=9)


def test_without_drops_entries() -> None:
    clock = vc(a=1, b=2, c=3)
    assert clock.without(frozenset({"a", "c", "zz"})) == vc(b=2)
    assert clock == vc(a=1, b=2, c=3)


def test_value_equality() -> None:
    assert vc(a=1, b=2) == vc(b=2, a=1)
    assert vc(a=1) != vc(a=2)
    # Struct equality is structural: an explicit zero entry differs from a missing one even though
    # compare() calls them SAME.
    assert vc(a=0) != vc()


def test_unhashable() -> None:
    assert VectorClock.__hash__ is None  # a mutable value: no hash that could change under a dict
    with pytest.raises(TypeError):
        hash(vc(a=1))


@law_settings
@given(clocks, clocks)
def test_compare_is_antisymmetric(left: VectorClock, right: VectorClock) -> None:
    assert right.compare(left) is MIRROR[left.compare(right)]


@law_settings
@given(clocks)
def test_compare_is_reflexive(clock: VectorClock) -> None:
    assert clock.compare(clock.copy()) is Causality.SAME


@law_settings
@given(clocks, clocks)
def test_merge_is_commutative(left: VectorClock, right: VectorClock) -> None:
    assert left.merge(right) == right.merge(left)


@law_settings
@given(clocks, clocks, clocks)
def test_merge_is_associative(a: VectorClock, b: VectorClock, c: VectorClock) -> None:
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@law_settings
@given(clocks)
def test_merge_is_idempotent(clock: VectorClock) -> None:
    assert clock.merge(clock) == clock


@law_settings
@given(clocks, clocks)
def test_merge_is_the_least_upper_bound(left: VectorClock, right: VectorClock) -> None:
    merged = left.merge(right)
    assert merged.compare(left) in (Causality.AFTER, Causality.SAME)
    assert merged.compare(right) in (Causality.AFTER, Causality.SAME)
    for replica_id in left.timestamps.keys() | right.timestamps.keys():
        assert merged.get(replica_id) == max(left.get(replica_id), right.get(replica_id))


@law_settings
@given(clocks, REPLICAS)
def test_increment_is_after_the_original(clock: VectorClock, replica_id: str) -> None:
    incremented = clock.increment(replica_id)
    assert incremented.compare(clock) is Causality.AFTER
    assert clock.compare(incremented) is Causality.BEFORE
    assert incremented.is_after(clock)


@law_settings
@given(positive_clocks, positive_clocks)
def test_is_after_implies_compare_after(left: VectorClock, right: VectorClock) -> None:
    if left.is_after(right):
        assert left.compare(right) is Causality.AFTER


@law_settings
@given(clocks, clocks)
def test_is_after_implies_not_before_with_zero_entries(
    left: VectorClock, right: VectorClock
) -> None:
    """With zero entries the implication weakens to AFTER or SAME: see ``extra-zero-entry``."""
    if left.is_after(right):
        assert left.compare(right) in (Causality.AFTER, Causality.SAME)


def test_is_after_and_compare_differ_on_extra_zero_entry() -> None:
    """Hazelcast counts any extra entry as "after"; compare() counts a zero entry as missing."""
    assert vc(a=1, b=0).is_after(vc(a=1))
    assert vc(a=1, b=0).compare(vc(a=1)) is Causality.SAME
