"""A link's two outbound lanes as plain functions over a ``Link``: no loop, no kernel buffers.

The write path of the I/O thread is ``next_batch`` (what to send), the socket's ``send`` (how much
it took), then ``consume`` (what is done, what waits); ``drive`` below plays the socket, taking a
fixed number of bytes per call, so these tests decide exactly how much the "kernel" accepts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from support.links import bare_link

from actors.transport.link import (
    Link,
    consume,
    drop_outbound,
    enqueue,
    next_batch,
    report_dropped,
    requeue,
)


@pytest.fixture
def link() -> Iterator[Link]:
    """A link whose socket is never used: the lane functions only touch its queues."""
    ends = socket.socketpair()
    yield bare_link(ends[0])
    for end in ends:
        end.close()


def drive(link: Link, takes: int) -> bytes:
    """Write out everything, the "socket" taking at most ``takes`` bytes per send."""
    wire = b""
    while link.outbound_bytes:
        batch = next_batch(link)
        sent = min(takes, sum(len(queued.frame) for queued in batch))
        wire += b"".join(bytes(queued.frame) for queued in batch)[:sent]
        consume(link, batch, sent)
    return wire


def test_a_batch_takes_membership_frames_before_application_frames(link: Link) -> None:
    enqueue(link, b"d1", data=True)
    enqueue(link, b"c1")
    enqueue(link, b"d2", data=True)
    enqueue(link, b"c2")
    batch = next_batch(link)
    assert [bytes(queued.frame) for queued in batch] == [b"c1", b"c2", b"d1", b"d2"]
    assert [queued.data for queued in batch] == [False, False, True, True]
    assert not link.control
    assert not link.data


def test_a_batch_stops_once_it_holds_a_full_send(link: Link) -> None:
    big = b"x" * (200 * 1024)  # a send joins frames up to 256 KiB
    for _ in range(4):
        enqueue(link, big, data=True)
    assert len(next_batch(link)) == 2
    assert len(link.data) == 2


def test_a_frame_partly_sent_goes_on_before_anything_else(link: Link) -> None:
    done: list[str] = []
    enqueue(link, b"0123456789", data=True, on_sent=lambda: done.append("d"))
    consume(link, next_batch(link), 4)
    assert link.current is not None
    assert bytes(link.current.frame) == b"456789"
    assert done == []
    enqueue(link, b"control")
    assert [bytes(queued.frame) for queued in next_batch(link)] == [b"456789", b"control"]


def test_consume_calls_on_sent_once_per_whole_frame_and_puts_the_rest_back_in_order(
    link: Link,
) -> None:
    done: list[int] = []
    for number in range(4):
        enqueue(link, b"%d---" % number, data=True, on_sent=lambda n=number: done.append(n))
    enqueue(link, b"c---")
    batch = next_batch(link)
    consume(link, batch, 4 + 4 + 2)  # c---, 0---, and 2 bytes of 1---
    assert done == [0]
    assert link.current is not None
    assert bytes(link.current.frame) == b"--"
    assert [frame for frame, _ in link.data] == [b"2---", b"3---"]
    assert link.outbound_bytes == 20 - 10
    assert link.data_bytes == 3 * 4  # a frame counts as data until it is sent in full


def test_requeue_puts_unsent_frames_back_at_the_head_of_their_lanes(link: Link) -> None:
    enqueue(link, b"c1")
    enqueue(link, b"d1", data=True)
    batch = next_batch(link)
    enqueue(link, b"c2")
    enqueue(link, b"d2", data=True)
    requeue(link, batch)
    assert list(link.control) == [b"c1", b"c2"]
    assert [frame for frame, _ in link.data] == [b"d1", b"d2"]


def test_a_membership_frame_overtakes_a_backlog_and_each_lane_keeps_its_order(
    link: Link,
) -> None:
    """What the TCP smoke test in test_io_loop.py shows end to end, for any send size."""
    sent: list[int] = []
    for number in range(200):
        frame = b"%04d" % number + b"." * 996
        enqueue(link, frame, data=True, on_sent=lambda n=number: sent.append(n))
    batch = next_batch(link)
    consume(link, batch, 1500)  # the socket took one frame and a half
    enqueue(link, b"MEMBERSHIP")
    wire = b"".join(bytes(queued.frame) for queued in batch)[:1500] + drive(link, takes=777)
    at = wire.index(b"MEMBERSHIP")
    assert at == 2000, "only the rest of the frame on its way goes first"
    data = wire[:at] + wire[at + len(b"MEMBERSHIP") :]
    numbers = [int(data[i : i + 4]) for i in range(0, len(data), 1000)]
    assert numbers == list(range(200)), "each lane in order"
    assert sent == list(range(200)), "on_sent once for every application frame, in order"
    assert (link.outbound_bytes, link.data_bytes, link.current) == (0, 0, None)


def test_dropping_the_lanes_reports_every_unsent_application_frame(link: Link) -> None:
    dropped: list[str] = []
    enqueue(link, b"on its way", data=True, on_sent=lambda: dropped.append("current"))
    consume(link, next_batch(link), 3)
    enqueue(link, b"waiting", data=True, on_sent=lambda: dropped.append("waiting"))
    enqueue(link, b"control")
    report_dropped(link, drop_outbound(link), "gone")
    assert dropped == ["current", "waiting"]
    assert not link.control
    assert not link.data
    assert link.current is None
    assert link.outbound_bytes == link.data_bytes == 0


def test_a_failing_on_sent_is_logged_and_the_rest_go_on(
    link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[str] = []

    def fails() -> None:
        raise RuntimeError("a bug in a callback")

    enqueue(link, b"one", data=True, on_sent=fails)
    enqueue(link, b"two", data=True, on_sent=lambda: done.append("two"))
    with caplog.at_level("ERROR", logger="actors.transport.link"):
        drive(link, takes=100)
    assert done == ["two"]
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [RuntimeError]
