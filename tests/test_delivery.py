"""The pure hold-back of application envelopes: FIFO per sender, membership reached, bounded."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.messaging.delivery import DeliveryQueue, Release
from messages.messaging.versions import EMPTY_DIGEST, version_digest
from messages.vector_clock import VectorClock

WAIT = 2.0
NONE = EMPTY_DIGEST


def version(**entries: int) -> VectorClock:
    return VectorClock(dict(entries))


def offer(
    queue: DeliveryQueue[str], sender: str, sequence: int, needs: VectorClock, now: float
) -> list[Release[str]]:
    """An envelope that names ``needs`` by its digest and defines it (its first to this node)."""
    item = f"{sender}{sequence}"
    return queue.offer(sender, sequence, version_digest(needs), item, now, needs)


def items(released: list[Release[str]]) -> list[str]:
    return [release.item for release in released]


def test_in_order_envelopes_are_delivered_at_once() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    assert queue.offer("a", 1, NONE, "a1", 0.0) == [Release("a1", None)]
    assert queue.offer("a", 2, NONE, "a2", 0.0) == [Release("a2", None)]
    assert queue.held == 0


def test_out_of_order_envelopes_wait_for_the_gap_then_go_in_order() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    assert queue.offer("a", 3, NONE, "a3", 0.0) == []
    assert queue.offer("a", 2, NONE, "a2", 0.0) == []
    assert queue.offer("b", 1, NONE, "b1", 0.0) == [Release("b1", None)]  # others are not held
    assert items(queue.offer("a", 1, NONE, "a1", 0.1)) == ["a1", "a2", "a3"]


def test_an_envelope_waits_until_this_member_has_seen_the_senders_membership() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.reached(VectorClock({"m1": 3}), frozenset(), 0.0)
    assert offer(queue, "a", 1, version(m1=3, m2=1), 0.0) == []
    assert queue.offer("a", 2, NONE, "a2", 0.0) == []  # FIFO: behind a1
    assert queue.reached(VectorClock({"m1": 3}), frozenset(), 0.5) == []
    assert items(queue.reached(VectorClock({"m1": 4, "m2": 1}), frozenset(), 0.6)) == ["a1", "a2"]


def test_a_member_this_node_removed_counts_as_seen() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.reached(VectorClock({"m1": 3}), frozenset({"gone"}), 0.0)
    assert offer(queue, "a", 1, version(m1=2, gone=7), 0.0) == [Release("a1", None)]


def test_a_version_defined_once_resolves_the_envelopes_that_name_it_alone() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.reached(VectorClock({"m1": 3}), frozenset(), 0.0)
    needs = version(m1=3)
    assert offer(queue, "a", 1, needs, 0.0) == [Release("a1", None)]
    assert queue.offer("a", 2, version_digest(needs), "a2", 0.0) == [Release("a2", None)]


def test_a_version_this_node_adopted_needs_no_definition() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.reached(VectorClock({"m1": 3, "m2": 1}), frozenset(), 0.0)
    digest = version_digest(version(m2=1, m1=3))  # the same clock, entries in another order
    assert queue.offer("a", 1, digest, "a1", 0.0) == [Release("a1", None)]


def test_a_version_merged_away_is_reached_by_a_later_one_without_waiting() -> None:
    """The receiver never adopts the sender's version itself (it merged a change of its own
    into it): the definition says what it needs, and a later version has it."""
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.reached(VectorClock({"m1": 4, "r": 1}), frozenset(), 0.0)
    assert offer(queue, "a", 1, version(m1=3), 0.0) == [Release("a1", None)]


def test_an_unknown_version_waits_for_its_definition_from_any_sender() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    needs = version(m1=1)
    assert queue.offer("a", 1, version_digest(needs), "a1", 0.0) == []
    assert queue.offer("a", 2, NONE, "a2", 0.0) == []  # FIFO: behind a1
    assert queue.reached(VectorClock({"m1": 1, "r": 1}), frozenset(), 0.1) == []  # unknown
    released = queue.offer("b", 1, version_digest(needs), "b1", 0.2, needs)  # b defines it
    assert sorted(items(released)) == ["a1", "a2", "b1"]
    assert items(released)[:2] == ["a1", "a2"] or items(released)[1:] == ["a1", "a2"]
    assert queue.held == 0


def test_a_version_never_defined_is_given_up_after_causal_wait_and_says_so() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.offer("a", 1, version_digest(version(m9=1)), "a1", 0.0)
    assert queue.expire(WAIT / 2) == []
    assert queue.expire(WAIT) == [
        Release("a1", "the membership version its sender had is unknown here")
    ]


def test_a_lost_message_is_skipped_after_causal_wait_and_says_so() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.offer("a", 1, NONE, "a1", 0.0)
    queue.offer("a", 4, NONE, "a4", 1.0)
    queue.offer("a", 5, NONE, "a5", 1.5)
    assert queue.next_deadline() == 1.0 + WAIT
    assert queue.expire(2.9) == []
    released = queue.expire(3.0)
    assert released == [
        Release("a4", "2 earlier message(s) from a never came"),
        Release("a5", None),
    ]
    assert queue.next_deadline() is None
    assert queue.offer("a", 2, NONE, "a2 (too late)", 3.1) == []  # a duplicate now
    assert queue.duplicates == 1


def test_a_membership_never_reached_is_given_up_after_causal_wait() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    offer(queue, "a", 1, version(m9=1), 0.0)
    (release,) = queue.expire(WAIT)
    assert release.item == "a1"
    assert release.late is not None
    assert "membership" in release.late


def test_duplicates_are_dropped_and_counted() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.offer("a", 1, NONE, "a1", 0.0)
    queue.offer("a", 3, NONE, "a3", 0.0)
    assert queue.offer("a", 1, NONE, "again", 0.0) == []
    assert queue.offer("a", 3, NONE, "again", 0.0) == []
    assert queue.duplicates == 2


def test_a_sender_that_is_gone_leaves_its_held_envelopes_delivered_late() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    queue.offer("a", 3, NONE, "a3", 0.0)
    queue.offer("a", 2, NONE, "a2", 0.0)
    assert queue.forget("a") == [
        Release("a2", "its sender is gone"),
        Release("a3", "its sender is gone"),
    ]
    assert queue.held == 0


def test_a_full_hold_back_releases_the_longest_waiting_sender_late() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT, max_held=2)
    queue.offer("a", 2, NONE, "a2", 0.0)
    queue.offer("b", 2, NONE, "b2", 0.5)
    released = queue.offer("c", 2, NONE, "c2", 1.0)
    assert released == [Release("a2", "1 earlier message(s) from a never came")]
    assert queue.held == 2


def test_a_version_whose_clock_is_not_its_digests_is_refused_and_holds_nothing() -> None:
    queue: DeliveryQueue[str] = DeliveryQueue(WAIT)
    with pytest.raises(ValueError, match="bad version"):
        queue.offer("a", 1, version_digest(version(m=1)), "a1", 0.0, version(m=2))
    assert queue.held == 0
    assert queue.offer("a", 1, NONE, "a1", 0.0) == [Release("a1", None)]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="causal_wait"):
        DeliveryQueue(0.0)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_arrival_order_delivers_each_once_in_fifo_order_after_its_membership(
    data: st.DataObject,
) -> None:
    senders = data.draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=3, unique=True))
    envelopes = []
    for sender in senders:
        for sequence in range(1, data.draw(st.integers(1, 6)) + 1):
            needs = data.draw(st.integers(0, 3))
            envelopes.append((sender, sequence, needs))
    arrivals = data.draw(st.permutations(envelopes))
    duplicates = data.draw(st.lists(st.sampled_from(envelopes), max_size=3))
    queue: DeliveryQueue[tuple[str, int, int]] = DeliveryQueue(WAIT)
    membership = 0
    now = 0.0
    delivered: list[tuple[tuple[str, int, int], str | None, int]] = []

    def note(released: list[Release[tuple[str, int, int]]]) -> None:
        delivered.extend((release.item, release.late, membership) for release in released)

    for envelope in [*arrivals, *duplicates]:
        now += data.draw(st.sampled_from([0.0, 0.1, 1.0]))
        if data.draw(st.booleans()):
            membership = min(membership + 1, 3)
            note(queue.reached(VectorClock({"m": membership}), frozenset(), now))
        sender, sequence, needs = envelope
        needed = version(m=needs)
        note(queue.offer(sender, sequence, version_digest(needed), envelope, now, needed))
        if data.draw(st.booleans()):
            note(queue.expire(now))  # may give up waiting: late, but still in FIFO order
    membership = 3
    note(queue.reached(VectorClock({"m": membership}), frozenset(), now))
    note(queue.expire(now + WAIT))

    counts = collections.Counter(item for item, _, _ in delivered)
    assert max(counts.values(), default=1) == 1  # never twice
    missing = set(envelopes) - set(counts)
    assert not missing or any(late for _, late, _ in delivered)  # skipped only after giving up
    for sender in senders:
        sequences = [item[1] for item, _, _ in delivered if item[0] == sender]
        assert sequences == sorted(sequences)  # FIFO, late or not
    for (_, _, needs), late, reached in delivered:
        if late is None:
            assert needs <= reached  # on time means after the membership it needed
