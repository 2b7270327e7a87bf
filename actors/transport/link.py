"""One link of the I/O thread: its state, its socket options and its two outbound lanes.

Outbound frames wait in two lanes, so that membership frames never queue behind application frames
(only behind the frame already on its way). The functions here do a lane's bookkeeping for the
thread's write path: add a frame to its lane (``enqueue``), take a batch from the head
(``next_batch``), account for what the socket took (``consume``), put back what it did not
(``requeue``), and drop what is left when the link is gone (``drop_outbound``, then
``report_dropped``). Everything here is touched by the loop thread only, but for one thing:
``write_now`` writes an application frame from any thread (an answer from the answering actor's
thread, a request from the asking one) straight to the socket of an established plain link. So a
link's outbound state (its lanes, the frame on its way, its socket's send and close) is changed
under the link's ``lock`` by both; see ``write_now``.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pykka

from actors.transport.timers import Timer
from actors.transport.tls import TlsLayer
from messages.address import Address
from messages.settings import Settings
from messages.wire.framing import FrameDecoder
from messages.wire.handshake import Hello, Identity

__all__ = [
    "HelloCheck",
    "Link",
    "OnSent",
    "Proving",
    "Queued",
    "configure_socket",
    "consume",
    "drop_outbound",
    "enqueue",
    "next_batch",
    "notify_sent",
    "report_dropped",
    "requeue",
    "write_now",
]

logger = logging.getLogger(__name__)

HelloCheck = Callable[[Hello], str | None]
"""Returns the reason to refuse a handshake, or None to accept it."""

OnSent = Callable[[], None] | None
"""Called (in the I/O thread) once an application frame has been written, or dropped."""

_WRITE_BATCH_BYTES = 256 * 1024  # frames joined into one send
_KEEPALIVE = (10, 5, 3)  # idle s, interval s, probes: a vanished peer is noticed within ~25 s
# Each socket buffer's size, fixed (no autotuning up to tcp_rmem's 32 MB): while a receiver does
# not read a link (backpressure), what waits in the kernels ahead of a heartbeat stays this small.
_SOCKET_BUFFER_BYTES = 256 * 1024


class Queued(NamedTuple):
    """A frame on its way out (or its unsent rest): what to call once it is sent, which lane it
    came from, and its whole size."""

    frame: bytes | memoryview
    on_sent: OnSent
    data: bool
    size: int


class Proving(NamedTuple):
    """A dialled link waiting for the accepting member's proof of the shared secret: the
    ``Hello`` it sent (with its nonce), and the frames held back until it has proved its own."""

    hello: Hello
    held: list[Queued]


class Link:
    """One connection's state; touched only by the loop thread."""

    __slots__ = (
        "challenge",
        "check_hello",
        "closing",
        "connecting",
        "control",
        "current",
        "data",
        "data_bytes",
        "decoder",
        "deliver_to",
        "handler",
        "id",
        "identity",
        "idle_close",
        "interest",
        "last_active",
        "lock",
        "manager",
        "name",
        "on_finish",
        "open",
        "outbound_bytes",
        "paused",
        "peer",
        "proving",
        "sock",
        "source",
        "timer",
        "tls",
    )

    def __init__(
        self,
        link_id: int,
        sock: socket.socket,
        name: str,
        *,
        peer: Address | None,
        source: str | None,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        decoder: FrameDecoder,
        check_hello: HelloCheck | None,
        idle_close: bool,
    ) -> None:
        self.id = link_id
        self.sock = sock
        self.name = name
        self.peer = peer  # the address dialled, for a dialled link
        self.source = source  # the remote host, for an accepted link still in its handshake
        self.deliver_to = deliver_to
        self.manager = manager
        self.decoder = decoder
        self.check_hello = check_hello  # set until an accepted link's handshake has ended
        # With a shared secret: the accepted link's Hello and the nonce its proof must cover;
        # the dialled link's Hello and what waits for the proofs (``Proving``).
        self.challenge: tuple[Hello, bytes] | None = None
        self.proving: Proving | None = None
        # Who the peer is: from an accepted link's Hello, a dialled link's HelloAccepted.
        self.identity: Identity | None = None
        self.idle_close = idle_close
        self.connecting = False
        self.closing: str | None = None  # the reason, while the last frames go out
        # Two lanes: membership frames never wait behind application frames (only behind the
        # frame already on its way, ``current``: its unsent rest, and what to call once sent).
        self.control: collections.deque[bytes] = collections.deque()
        self.data: collections.deque[tuple[bytes, OnSent]] = collections.deque()
        self.current: Queued | None = None
        self.outbound_bytes = 0
        self.data_bytes = 0  # of application frames, bounded by the node's flow gate instead
        self.interest = 0
        self.paused: float | None = None  # since when it is not read: its node's backlog is full
        self.last_active = time.monotonic()
        self.timer: Timer | None = None  # the connect or handshake deadline
        self.handler: Callable[[int], None] | None = None  # its selector callback
        self.on_finish: Callable[[], None] | None = None  # called once when the link ends
        self.tls: TlsLayer | None = None  # between the socket and the frames, on a TLS link
        # Held by whoever changes the outbound state (the loop's queue, flush and close, and
        # ``write_now`` from any thread); ``open`` turns False under it when the link ends.
        self.lock = threading.Lock()
        self.open = True


def configure_socket(sock: socket.socket, settings: Settings) -> None:
    """Make a link's socket non-blocking, unbuffered (no Nagle), with kernel buffers of a fixed
    size, and quick to notice a vanished peer, whether it was dialled or accepted."""
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER_BYTES)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: unacknowledged data closes the link
        milliseconds = int(settings.unacked_timeout * 1000)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
    if hasattr(socket, "TCP_KEEPIDLE"):
        idle, interval, probes = _KEEPALIVE
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


def enqueue(link: Link, frame: bytes, data: bool = False, on_sent: OnSent = None) -> None:
    """Add ``frame`` at the tail of its lane: application (``data``) or membership."""
    if data:
        link.data.append((frame, on_sent))
        link.data_bytes += len(frame)
    else:
        link.control.append(frame)
    link.outbound_bytes += len(frame)


def next_batch(link: Link) -> list[Queued]:
    """Up to ``_WRITE_BATCH_BYTES`` from the head: the frame on its way, then membership
    frames, then application frames (each lane in its order)."""
    batch: list[Queued] = []
    size = 0
    if link.current is not None:
        batch.append(link.current)
        size = len(link.current.frame)
        link.current = None
    while link.control and size < _WRITE_BATCH_BYTES:
        frame = link.control.popleft()
        batch.append(Queued(frame, None, False, len(frame)))
        size += len(frame)
    while link.data and size < _WRITE_BATCH_BYTES:
        frame, on_sent = link.data.popleft()
        batch.append(Queued(frame, on_sent, True, len(frame)))
        size += len(frame)
    return batch


def consume(link: Link, batch: list[Queued], sent: int, done: list[OnSent] | None = None) -> None:
    """Account for ``sent`` bytes of ``batch``: frames sent in full are done (their ``on_sent``
    called, or added to ``done`` for the caller to call once it has let go of the link's lock:
    one may take the lane's lock, which is taken before a link's); a partly sent one becomes
    the frame on its way, and the rest go back to the head of their lanes."""
    link.outbound_bytes -= sent
    for index, queued in enumerate(batch):
        if sent >= len(queued.frame):
            sent -= len(queued.frame)
            if queued.data:
                link.data_bytes -= queued.size
            if done is None:
                notify_sent(queued.on_sent)
            elif queued.on_sent is not None:
                done.append(queued.on_sent)
            continue
        link.current = queued._replace(frame=memoryview(queued.frame)[sent:])
        requeue(link, batch[index + 1 :])
        return


def requeue(link: Link, frames: list[Queued]) -> None:
    """Put unsent frames back at the head of their lanes, in their order."""
    for queued in reversed(frames):
        frame = bytes(queued.frame)
        if queued.data:
            link.data.appendleft((frame, queued.on_sent))
        else:
            link.control.appendleft(frame)


def drop_outbound(link: Link) -> list[OnSent]:
    """The link is gone: its unsent frames are dropped; what to call for the application ones
    (``report_dropped``, outside the link's lock: their asks fail by the member's removal or
    their timeout, tells are lost)."""
    dropped = [queued.on_sent for queued in (link.current,) if queued and queued.data]
    dropped += [on_sent for _, on_sent in link.data]
    if link.proving is not None:  # held back for a handshake that did not end
        dropped += [queued.on_sent for queued in link.proving.held if queued.data]
        link.proving.held.clear()
    link.current = None
    link.data.clear()
    link.control.clear()
    link.outbound_bytes = link.data_bytes = 0
    return dropped


def report_dropped(link: Link, dropped: list[OnSent], reason: str) -> None:
    """Say that ``dropped`` application frames of ``link`` are lost, and call their
    ``on_sent``."""
    if dropped:
        logger.warning(
            "Dropped %d unsent application message(s) to %s: %s",
            len(dropped),
            link.name,
            reason,
        )
    for on_sent in dropped:
        notify_sent(on_sent)


def write_now(link: Link, frame: Callable[[], bytes], on_sent: OnSent) -> bool | None:
    """From any thread: write the application frame that ``frame()`` makes (called under the
    link's lock, so what it stamps is in the order the link carries) after everything queued on
    ``link``. False (``frame`` not called) unless the link is open,
    plain (no TLS), up (connected, handshake done either way) and not closing: the caller
    then goes the loop's way. True when the socket took the whole frame at once (``on_sent``
    called), and None when the rest waits in the link's data lane for the loop, which the caller
    must then ask to ``flush`` it; the loop's own writes keep it flushed (``LinkTable.flush``).

    Why the order holds: the frame goes to the socket at once only when nothing waits on the
    link (no frame on its way, both lanes empty); else it is queued behind what waits. Both
    happen under ``lock``, which the loop holds while it queues, sends and closes, so no two
    writes interleave on the socket and nothing goes out after the link has closed. A send error
    is left for the loop to meet (the frame waits as the frame on its way: the loop's flush
    fails, closes the link and drops it, calling ``on_sent``)."""
    with link.lock:
        if not (
            link.open
            and link.tls is None
            and not link.connecting
            and link.proving is None
            and link.check_hello is None
            and link.identity is not None
            and link.closing is None
        ):
            return False
        data = frame()
        if link.outbound_bytes:
            enqueue(link, data, True, on_sent)
            return None
        try:
            sent = link.sock.send(data)
        except OSError:  # BlockingIOError too: the loop sends it, or meets the error
            sent = 0
        link.last_active = time.monotonic()
        if sent < len(data):
            link.current = Queued(memoryview(data)[sent:], on_sent, True, len(data))
            link.outbound_bytes += len(data) - sent
            link.data_bytes += len(data)
            return None
    notify_sent(on_sent)
    return True


def notify_sent(on_sent: OnSent) -> None:
    """Call a frame's ``on_sent``, if any; a failing one is logged, never raised."""
    if on_sent is not None:
        try:
            on_sent()
        except Exception:
            logger.exception("A frame's on_sent callback failed")
