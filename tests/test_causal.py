"""CausalBuffer and stamp(): per-sender FIFO, causal hold-back, duplicates, bounded hold-back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messages.messaging.causal import CausalBuffer, HoldBackOverflow, Stamped, stamp
from messages.vector_clock import VectorClock


def envelope(sender: str, **timestamps: int) -> Stamped:
    return Stamped(sender=sender, clock=VectorClock(dict(timestamps)), body=(sender, timestamps))


def fifo(sender: str, count: int) -> list[Stamped]:
    """``count`` consecutive sends of ``sender`` that depend on nothing else."""
    return [envelope(sender, **{sender: sequence}) for sequence in range(1, count + 1)]


def test_stamp_increments_own_entry_and_leaves_the_input() -> None:
    clock = VectorClock({"b": 2})
    sent_clock, sent = stamp(clock, "a", "hello")
    assert sent_clock == VectorClock({"a": 1, "b": 2})
    assert sent == Stamped(sender="a", clock=sent_clock, body="hello")
    assert clock == VectorClock({"b": 2})


def test_in_order_envelopes_are_delivered_at_once() -> None:
    buffer = CausalBuffer()
    for sent in fifo("a", 3):
        assert buffer.offer(sent) == [sent]
    assert buffer.delivered == VectorClock({"a": 3})
    assert buffer.held == 0


def test_out_of_order_from_one_sender_is_held_then_released_in_fifo_order() -> None:
    buffer = CausalBuffer()
    first, second, third = fifo("a", 3)
    assert buffer.offer(third) == []
    assert buffer.offer(second) == []
    assert buffer.held == 2
    assert buffer.offer(first) == [first, second, third]
    assert buffer.held == 0
    assert buffer.delivered == VectorClock({"a": 3})


def test_message_that_depends_on_another_sender_waits_for_it() -> None:
    buffer = CausalBuffer()
    from_a = envelope("a", a=1)
    from_b_after_a = envelope("b", a=1, b=1)
    assert buffer.offer(from_b_after_a) == []
    assert buffer.held == 1
    assert buffer.offer(from_a) == [from_a, from_b_after_a]
    assert buffer.delivered == VectorClock({"a": 1, "b": 1})


def test_head_waiting_for_two_senders_is_released_only_after_both() -> None:
    buffer = CausalBuffer()
    from_a, from_b = envelope("a", a=1), envelope("b", b=1)
    from_c = envelope("c", a=1, b=1, c=1)
    assert buffer.offer(from_c) == []
    assert buffer.offer(from_a) == [from_a]
    assert buffer.held == 1
    assert buffer.offer(from_b) == [from_b, from_c]


def test_release_cascades_across_senders() -> None:
    buffer = CausalBuffer()
    a1, a2 = fifo("a", 2)
    b1 = envelope("b", a=1, b=1)
    c1 = envelope("c", a=2, b=1, c=1)
    for held in (c1, b1, a2):
        assert buffer.offer(held) == []
    released = buffer.offer(a1)
    assert sorted(released, key=str) == sorted([a1, a2, b1, c1], key=str)
    assert released[0] == a1
    assert released[-1] == c1
    assert released.index(a1) < released.index(a2)


def test_duplicates_of_delivered_and_held_envelopes_are_dropped_and_counted() -> None:
    buffer = CausalBuffer()
    first, second, third = fifo("a", 3)
    buffer.offer(first)
    assert buffer.offer(first) == []
    assert buffer.offer(third) == []
    assert buffer.offer(third) == []
    assert buffer.duplicates == 2
    assert buffer.held == 1
    assert buffer.offer(second) == [second, third]
    assert buffer.offer(second) == []
    assert buffer.duplicates == 3
    assert buffer.delivered == VectorClock({"a": 3})


def test_delivered_clock_is_replaced_never_mutated() -> None:
    buffer = CausalBuffer()
    before = buffer.delivered
    buffer.offer(envelope("a", a=1))
    buffer.stamp("me", "body")
    assert before == VectorClock()
    assert buffer.delivered == VectorClock({"a": 1, "me": 1})


def test_overflow_raises_a_clear_error_and_keeps_earlier_held_envelopes() -> None:
    buffer = CausalBuffer(max_held=2)
    a1, a2, a3, a4, a5 = fifo("a", 5)
    buffer.offer(a3)
    buffer.offer(a4)
    with pytest.raises(HoldBackOverflow, match=r"item #5 from 'a', which waits for 'a' #1\.\.#4"):
        buffer.offer(a5)
    assert buffer.held == 2
    assert buffer.offer(a1) == [a1]
    assert buffer.offer(a2) == [a2, a3, a4]
    assert buffer.offer(a5) == [a5]


def test_overflow_names_the_other_senders_it_waits_for() -> None:
    buffer = CausalBuffer(max_held=1)
    buffer.offer(envelope("a", a=2))
    with pytest.raises(
        HoldBackOverflow, match=r"#1 from 'c', which waits for 'a' #1\.\.#3, 'b' #1"
    ):
        buffer.offer(envelope("c", a=3, b=1, c=1))
    assert isinstance(HoldBackOverflow("x"), ValueError)


def test_duplicate_is_dropped_even_when_full() -> None:
    buffer = CausalBuffer(max_held=1)
    held = envelope("a", a=2)
    buffer.offer(held)
    assert buffer.offer(held) == []
    assert buffer.duplicates == 1


def test_own_sends_count_so_a_reply_that_depends_on_them_is_delivered() -> None:
    buffer = CausalBuffer()
    sent = buffer.stamp("me", "question")
    assert sent.clock == VectorClock({"me": 1})
    reply = envelope("peer", me=1, peer=1)
    assert buffer.offer(reply) == [reply]


def test_bad_input_is_rejected_clearly() -> None:
    buffer = CausalBuffer()
    with pytest.raises(TypeError, match="takes a Stamped, got dict"):
        buffer.offer({"sender": "a"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock entry 0 for its own sender"):
        buffer.offer(envelope("a", b=1))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_held must be a positive int"):
            CausalBuffer(max_held=bad)  # type: ignore[arg-type]


@st.composite
def causal_histories(draw: st.DrawFn) -> list[Stamped]:
    """Sends of 2..4 processes, each sending after having delivered some of the others' sends.

    Delivering a message means merging its clock: that pulls in all of its causal predecessors, so
    every process clock stays a consistent cut.
    """
    senders = "abcd"[: draw(st.integers(min_value=2, max_value=4))]
    clocks = {sender: VectorClock() for sender in senders}
    sent: list[Stamped] = []
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        actor = draw(st.sampled_from(senders))
        if draw(st.booleans()) and sent:
            clocks[actor] = clocks[actor].merge(draw(st.sampled_from(sent)).clock)
        else:
            clocks[actor], message = stamp(clocks[actor], actor, len(sent))
            sent.append(message)
    return sent


def happened_before(earlier: Stamped, later: Stamped) -> bool:
    return earlier is not later and earlier.clock.get(earlier.sender) <= later.clock.get(
        earlier.sender
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_arrival_order_is_delivered_once_each_in_causal_order(data: st.DataObject) -> None:
    history = data.draw(causal_histories())
    arrivals = list(data.draw(st.permutations(history)))
    extra_copies = data.draw(st.lists(st.sampled_from(history), max_size=10)) if history else []
    for copy in extra_copies:
        arrivals.insert(data.draw(st.integers(min_value=0, max_value=len(arrivals))), copy)

    buffer = CausalBuffer()
    delivered = [released for arrival in arrivals for released in buffer.offer(arrival)]

    assert sorted(message.body for message in delivered) == list(range(len(history)))
    for position, message in enumerate(delivered):
        predecessors = [other for other in history if happened_before(other, message)]
        assert all(other in delivered[:position] for other in predecessors)
    assert buffer.held == 0
    assert buffer.duplicates == len(extra_copies)


def test_joining_late_a_senders_first_item_starts_its_sequence() -> None:
    buffer = CausalBuffer(join_late=True)
    a57 = envelope("a", a=57)
    assert buffer.offer(a57) == [a57]  # 1..56 were sent before this node took part
    assert buffer.offer(envelope("a", a=58)) == [envelope("a", a=58)]
    b1 = envelope("b", a=58, b=1)
    assert buffer.offer(b1) == [b1]
    strict = CausalBuffer()
    assert strict.offer(envelope("a", a=57)) == []  # without it: waits for 1..56


def test_giving_up_delivers_what_waits_for_a_cause_that_never_comes() -> None:
    buffer = CausalBuffer()
    b1 = envelope("b", a=3, b=1)  # b had delivered three of a's, which never arrive here
    b2 = envelope("b", a=3, b=2)
    c1 = envelope("c", b=2, c=1)
    for item in (b1, b2, c1):
        assert buffer.offer(item) == []
    assert buffer.give_up(lambda item: False) == []
    assert buffer.give_up(lambda item: item is b1) == [b1, b2, c1]  # and what waited behind it
    assert buffer.held == 0
