"""IoLoop: the one I/O thread of a node (or client), serving every socket and every timer.

A ``selectors`` loop: non-blocking accept, connect, read and write on every link, frames decoded
into messages in this thread and told to actors as ``Inbound``; outbound frames buffered per link
and written as the socket takes them. Actors use it through a thread-safe API that only queues a
command and wakes the loop (``dial``, ``write``, ``close``, ``listen``, ``call_later``,
``call_every``), so no actor ever blocks on a socket, and a node's thread count does not depend on
how many peers or clients it has.

Why ``selectors`` and not asyncio: the loop runs callbacks that are a few lines each and hands
everything else to actors; ``selectors`` gives exactly that with no second concurrency model (no
coroutines, no asyncio locks) beside pykka's, and its behaviour under load is easy to reason about.

Bounds, each logged when it bites: a link's outbound buffer (``max_outbound_bytes``: a peer that
does not keep up is disconnected), open links (``max_links``: the least recently used one is
closed), accepted connections still waiting for their ``Hello`` (``max_pending_handshakes``, and
``max_pending_handshakes_per_source`` per remote address; each must complete it within
``handshake_timeout`` in a first frame of at most ``HANDSHAKE_FRAME_BYTES``), frame size
(``max_frame_bytes``). Out of file descriptors, the listener backs off and keeps accepting.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pykka

from actors.timers import Timer, TimerQueue
from messages.address import Address
from messages.links import Inbound, LinkClosed, LinkUp
from messages.settings import Settings
from messages.wire.framing import Codec, FrameDecoder, FrameError, encode_frame
from messages.wire.protocol import HANDSHAKE_FRAME_BYTES, Hello, HelloRefused

logger = logging.getLogger(__name__)

HelloCheck = Callable[[Hello], str | None]
"""Returns the reason to refuse a handshake, or None to accept it."""

OnSent = Callable[[], None] | None
"""Called (in the I/O thread) once an application frame has been written, or dropped."""

_READ_BYTES = 256 * 1024  # one recv per readiness event: a busy link cannot starve the others
_WRITE_BATCH_BYTES = 256 * 1024  # frames joined into one send
_ACCEPTS_PER_EVENT = 64
_ACCEPT_BACKOFF_MIN = 0.05  # after EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources
_ACCEPT_BACKOFF_MAX = 1.0
_CONNECTION_ABORTED = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR})
_KEEPALIVE = (10, 5, 3)  # idle s, interval s, probes: a vanished peer is noticed within ~25 s


class _Queued(NamedTuple):
    """A frame on its way out (or its unsent rest): what to call once it is sent, which lane it
    came from, and its whole size."""

    frame: bytes | memoryview
    on_sent: OnSent
    data: bool
    size: int


class _Link:
    """One connection's state; touched only by the loop thread."""

    __slots__ = (
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
        "idle_close",
        "interest",
        "last_active",
        "manager",
        "name",
        "outbound_bytes",
        "peer",
        "sock",
        "source",
        "timer",
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
        self.check_hello = check_hello  # set until an accepted link's Hello has been checked
        self.idle_close = idle_close
        self.connecting = False
        self.closing: str | None = None  # the reason, while the last frames go out
        # Two lanes: membership frames never wait behind application frames (only behind the
        # frame already on its way, ``current``: its unsent rest, and what to call once sent).
        self.control: collections.deque[bytes] = collections.deque()
        self.data: collections.deque[tuple[bytes, OnSent]] = collections.deque()
        self.current: _Queued | None = None
        self.outbound_bytes = 0
        self.data_bytes = 0  # of application frames, bounded by the node's flow gate instead
        self.interest = 0
        self.last_active = time.monotonic()
        self.timer: Timer | None = None  # the connect or handshake deadline
        self.handler: Callable[[int], None] | None = None  # its selector callback


class _Listener:
    __slots__ = ("accept_frame", "check_hello", "deliver_to", "manager", "sock")

    def __init__(
        self,
        sock: socket.socket,
        accept_frame: bytes,
        check_hello: HelloCheck,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
    ) -> None:
        self.sock = sock
        self.accept_frame = accept_frame
        self.check_hello = check_hello
        self.deliver_to = deliver_to
        self.manager = manager


class IoLoop:
    """The sockets and timers of one node, served by one thread (see the module docstring).

    Links are numbered; ``Inbound(message, link, peer)`` goes to the link's ``deliver_to`` and
    ``LinkUp``/``LinkClosed`` to its ``manager`` (``LinkClosed`` once per link, with the reason).
    """

    def __init__(self, codec: Codec, settings: Settings, name: str = "io") -> None:
        self._codec = codec
        self._settings = settings
        self._selector = selectors.DefaultSelector()
        self._wakeup_in, self._wakeup_out = socket.socketpair()
        self._wakeup_in.setblocking(False)
        self._wakeup_out.setblocking(False)
        self._wakeup_pending = threading.Event()
        self._commands: collections.deque[Callable[[], object]] = collections.deque()
        self._timers = TimerQueue()
        self._links: collections.OrderedDict[int, _Link] = collections.OrderedDict()
        self._unflushed: dict[int, _Link] = {}  # links written to in this round of the loop
        self._link_ids = iter(range(1, 1 << 62))
        self._ids_lock = threading.Lock()
        self._handshakes_by_source: collections.Counter[str] = collections.Counter()
        self._refused_since_log = 0
        self._listener: _Listener | None = None
        self._accept_backoff = _ACCEPT_BACKOFF_MIN
        self._stopping = False
        self._selector.register(self._wakeup_in, selectors.EVENT_READ, self._on_wakeup)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._every(settings.idle_timeout / 2, self._close_idle)

    # -- the thread-safe API ------------------------------------------------------------------

    def listen(
        self,
        sock: socket.socket,
        *,
        accept_frame: bytes,
        check_hello: HelloCheck,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
    ) -> None:
        """Accept connections on ``sock``; each must say a ``Hello`` that ``check_hello`` accepts,
        answered with ``accept_frame``; then ``manager`` gets ``LinkUp``."""
        listener = _Listener(sock, accept_frame, check_hello, deliver_to, manager)
        self._submit(lambda: self._start_listening(listener))

    def dial(
        self,
        address: Address,
        first_frames: bytes,
        *,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        idle_close: bool = False,
    ) -> int:
        """Connect to ``address`` and send ``first_frames`` (a ``Hello``, say) first; returns the
        link's number at once. With ``idle_close``, the link closes after ``idle_timeout``
        without traffic either way. A host name (not an IP address) is resolved here, in the
        caller's thread, so that a slow resolver never holds up the I/O thread."""
        link_id = self._next_id()
        try:
            family, sockaddr = _resolve(address)
        except OSError as error:
            reason = f"cannot connect to {address}: {error}"
            self._submit(lambda: self._tell_closed(manager, link_id, address, reason))
            return link_id
        self._submit(
            lambda: self._start_dial(
                link_id, address, family, sockaddr, first_frames, deliver_to, manager, idle_close
            )
        )
        return link_id

    def encode(self, message: Any) -> bytes | None:
        """``message`` as a frame, in the caller's thread; None (logged) if it cannot be."""
        try:
            return encode_frame(self._codec.encode(message))
        except TypeError as error:
            logger.error("Cannot send %r: %s", message, error)
            return None

    def send(
        self, link_id: int, message: Any, *, data: bool = False, on_sent: OnSent = None
    ) -> None:
        """``write`` the frame of ``message`` (dropped, and ``on_sent`` called, if it cannot be
        encoded)."""
        frame = self.encode(message)
        if frame is None:
            notify_sent(on_sent)
        else:
            self.write(link_id, frame, data=data, on_sent=on_sent)

    def write(
        self, link_id: int, frame: bytes, *, data: bool = False, on_sent: OnSent = None
    ) -> None:
        """Queue ``frame`` on the link (dropped if it has closed meanwhile). A ``data`` frame (an
        application message) goes after every membership frame queued, and ``on_sent`` is called
        once it has been written, or dropped."""
        self._submit(lambda: self._write(link_id, frame, data, on_sent))

    def close(self, link_id: int, reason: str) -> None:
        """Close the link once the frames queued on it have gone out (or ``connect_timeout`` has
        passed)."""
        self._submit(lambda: self._close_by_id(link_id, reason))

    def call_later(self, delay: float, target: pykka.ActorRef[Any], message: object) -> Timer:
        """Tell ``message`` to ``target`` once, after ``delay`` seconds, unless cancelled."""
        return self._schedule(delay, None, target, message)

    def call_every(self, interval: float, target: pykka.ActorRef[Any], message: object) -> Timer:
        """Tell ``message`` to ``target`` every ``interval`` seconds until cancelled (or the
        target has stopped)."""
        if interval <= 0:
            raise ValueError(f"timer interval must be positive, got {interval}")
        return self._schedule(interval, interval, target, message)

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket and end the thread (no ``LinkClosed`` is told: the owners stop)."""

        def stop() -> None:
            self._stopping = True

        self._submit(stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- plumbing between threads -------------------------------------------------------------

    def _next_id(self) -> int:
        with self._ids_lock:
            return next(self._link_ids)

    def _submit(self, command: Callable[[], object]) -> None:
        self._commands.append(command)
        if not self._wakeup_pending.is_set():
            self._wakeup_pending.set()
            with contextlib.suppress(BlockingIOError, OSError):
                self._wakeup_out.send(b"\0")

    def _on_wakeup(self, _mask: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wakeup_in.recv(4096)

    def _schedule(
        self, delay: float, interval: float | None, target: pykka.ActorRef[Any], message: object
    ) -> Timer:
        def tell() -> bool:
            try:
                target.tell(message)
            except pykka.ActorDeadError:
                return False
            return True

        timer = Timer(tell, interval)
        deadline = time.monotonic() + max(delay, 0.0)
        self._submit(lambda: self._timers.add(deadline, timer))
        return timer

    def _after(self, delay: float, action: Callable[[], None]) -> Timer:
        """A one-off timer of the loop itself (loop thread only)."""

        def run() -> bool:
            action()
            return False

        return self._timers.add(time.monotonic() + delay, Timer(run, None))

    def _every(self, interval: float, action: Callable[[], None]) -> None:
        def run() -> bool:
            action()
            return True

        self._submit(lambda: self._timers.add(time.monotonic() + interval, Timer(run, interval)))

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            deadline = self._timers.next_deadline()
            timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if self._commands:
                timeout = 0.0
            for key, mask in self._selector.select(timeout):
                self._guarded(key.data, mask)
            self._wakeup_pending.clear()
            while self._commands:
                self._guarded(self._commands.popleft())
            self._flush_written()
            self._guarded(self._timers.fire_due, time.monotonic())
        self._shutdown()

    def _guarded(self, action: Callable[..., Any], *args: Any) -> None:
        """Run one handler; an error is a bug to log, never the end of the I/O thread."""
        try:
            action(*args)
        except Exception:
            logger.exception("I/O thread kept running after an error in %r", action)

    def _shutdown(self) -> None:
        for link in list(self._links.values()):
            with contextlib.suppress(OSError):
                link.sock.close()
        self._links.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.sock.close()
        self._selector.close()
        for sock in (self._wakeup_in, self._wakeup_out):
            sock.close()

    # -- accepting -------------------------------------------------------------------------------

    def _start_listening(self, listener: _Listener) -> None:
        listener.sock.setblocking(False)
        self._listener = listener
        self._selector.register(listener.sock, selectors.EVENT_READ, self._on_acceptable)

    def _on_acceptable(self, _mask: int) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(_ACCEPTS_PER_EVENT):
            try:
                sock, remote = listener.sock.accept()
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno in _CONNECTION_ABORTED:
                    continue
                self._back_off_accepting(error)
                return
            self._accept_backoff = _ACCEPT_BACKOFF_MIN
            self._on_accepted(sock, str(remote[0]), listener)

    def _back_off_accepting(self, error: OSError) -> None:
        """Stop watching the listener for a while: level-triggered, it would wake us at once."""
        listener = self._listener
        assert listener is not None
        delay = self._accept_backoff
        self._accept_backoff = min(delay * 2, _ACCEPT_BACKOFF_MAX)
        logger.warning("Cannot accept connections: %s; retrying in %.2f s", error.strerror, delay)
        self._selector.unregister(listener.sock)

        def resume() -> None:
            if self._listener is listener and not self._stopping:
                self._selector.register(listener.sock, selectors.EVENT_READ, self._on_acceptable)

        self._after(delay, resume)

    def _on_accepted(self, sock: socket.socket, source: str, listener: _Listener) -> None:
        settings = self._settings
        pending = sum(self._handshakes_by_source.values())
        if (
            pending >= settings.max_pending_handshakes
            or self._handshakes_by_source[source] >= settings.max_pending_handshakes_per_source
        ):
            sock.close()
            if not self._refused_since_log:
                logger.warning(
                    "%d connections (%d from %s) are waiting for their Hello, the limit: closing "
                    "new ones until some complete or time out",
                    pending,
                    self._handshakes_by_source[source],
                    source,
                )
            self._refused_since_log += 1
            return
        if self._refused_since_log:
            logger.warning(
                "Closed %d connections over the handshake limit", self._refused_since_log
            )
            self._refused_since_log = 0
        try:
            self._configure(sock)
            name = "{}:{}".format(*sock.getpeername()[:2])
        except OSError as error:
            sock.close()
            logger.debug("Accepted connection unusable: %s", error)
            return
        link = _Link(
            self._next_id(),
            sock,
            name,
            peer=None,
            source=source,
            deliver_to=listener.deliver_to,
            manager=listener.manager,
            decoder=FrameDecoder(settings.max_frame_bytes, HANDSHAKE_FRAME_BYTES),
            check_hello=listener.check_hello,
            idle_close=False,
        )
        self._handshakes_by_source[source] += 1
        self._add(link, selectors.EVENT_READ)
        timeout = settings.handshake_timeout
        link.timer = self._after(
            timeout,
            lambda: self._handshake_overdue(link, f"no Hello from {name} within {timeout:g} s"),
        )

    def _handshake_overdue(self, link: _Link, reason: str) -> None:
        if link.check_hello is not None and self._links.get(link.id) is link:
            logger.warning("Closing link: %s", reason)
            self._finish(link, reason)

    def _handshake_done(self, link: _Link) -> None:
        link.check_hello = None
        if link.timer is not None:
            link.timer.cancel()
        self._release_handshake(link)

    def _release_handshake(self, link: _Link) -> None:
        if link.source is not None:
            self._handshakes_by_source[link.source] -= 1
            if self._handshakes_by_source[link.source] <= 0:
                del self._handshakes_by_source[link.source]
            link.source = None

    # -- dialling ------------------------------------------------------------------------------

    @staticmethod
    def _tell_closed(
        manager: pykka.ActorRef[Any], link_id: int, peer: Address | None, reason: str
    ) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            manager.tell(LinkClosed(link=link_id, peer=peer, reason=reason))

    def _start_dial(
        self,
        link_id: int,
        address: Address,
        family: int,
        sockaddr: tuple[Any, ...],
        first_frames: bytes,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        idle_close: bool,
    ) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:  # out of file descriptors, say
            self._tell_closed(manager, link_id, address, f"cannot connect to {address}: {error}")
            return
        try:
            self._configure(sock)
            status = sock.connect_ex(sockaddr)
        except OSError as error:
            sock.close()
            self._tell_closed(manager, link_id, address, f"cannot connect to {address}: {error}")
            return
        if status not in (0, errno.EINPROGRESS):
            sock.close()
            failure = OSError(status, os.strerror(status))
            self._tell_closed(manager, link_id, address, f"cannot connect to {address}: {failure}")
            return
        link = _Link(
            link_id,
            sock,
            str(address),
            peer=address,
            source=None,
            deliver_to=deliver_to,
            manager=manager,
            decoder=FrameDecoder(self._settings.max_frame_bytes),
            check_hello=None,
            idle_close=idle_close,
        )
        link.connecting = status != 0
        link.control.append(first_frames)
        link.outbound_bytes = len(first_frames)
        self._add(link, selectors.EVENT_READ | selectors.EVENT_WRITE)
        if link.connecting:
            timeout = self._settings.connect_timeout
            link.timer = self._after(timeout, lambda: self._connect_overdue(link, timeout))

    def _connect_overdue(self, link: _Link, timeout: float) -> None:
        if link.connecting and self._links.get(link.id) is link:
            self._finish(link, f"cannot connect to {link.name}: no answer within {timeout:g} s")

    def _configure(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux: unacknowledged data closes the link
            milliseconds = int(self._settings.unacked_timeout * 1000)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, milliseconds)
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle, interval, probes = _KEEPALIVE
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)

    # -- links -------------------------------------------------------------------------------

    def _add(self, link: _Link, interest: int) -> None:
        self._links[link.id] = link
        link.interest = interest
        link.handler = functools.partial(self._on_event, link)
        self._selector.register(link.sock, interest, link.handler)
        limit = self._settings.max_links
        while len(self._links) > limit:
            oldest = next(iter(self._links.values()))
            reason = f"the link limit ({limit}) is reached: closing the least recently used link"
            logger.warning("Closing link to %s: %s", oldest.name, reason)
            self._finish(oldest, reason)

    def _touch(self, link: _Link) -> None:
        link.last_active = time.monotonic()
        self._links.move_to_end(link.id)

    def _on_event(self, link: _Link, mask: int) -> None:
        if self._links.get(link.id) is not link:
            return
        if mask & selectors.EVENT_WRITE:
            if link.connecting:
                self._connected(link)
            else:
                self._flush(link)
        if mask & selectors.EVENT_READ and self._links.get(link.id) is link and not link.closing:
            self._read(link)

    def _connected(self, link: _Link) -> None:
        status = link.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if status:
            error = OSError(status, os.strerror(status))
            self._finish(link, f"cannot connect to {link.name}: {error}")
            return
        link.connecting = False
        if link.timer is not None:
            link.timer.cancel()
        self._flush(link)

    def _read(self, link: _Link) -> None:
        try:
            data = link.sock.recv(_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._finish(link, f"connection error: {error}")
            return
        try:
            if not data:
                link.decoder.finish()
                self._finish(link, "closed by peer")
                return
            self._touch(link)
            for payload in link.decoder.feed(data):
                message = self._codec.decode(payload)
                if link.check_hello is not None:
                    if not self._handshake(link, message):
                        return
                else:
                    link.deliver_to.tell(Inbound(message=message, link=link.id, peer=link.name))
        except FrameError as error:
            reason = f"bad input from {link.name}: {error}"
            logger.warning("Closing link: %s", reason)
            self._finish(link, reason)
        except pykka.ActorDeadError:
            self._finish(link, "the actor this link delivers to has stopped")

    def _handshake(self, link: _Link, message: Any) -> bool:
        """Check an accepted link's first message; True if the link is up."""
        listener = self._listener
        assert link.check_hello is not None
        assert listener is not None
        if not isinstance(message, Hello):
            refusal: str | None = f"expected Hello as first frame, got {type(message).__name__}"
        else:
            refusal = link.check_hello(message)
        self._handshake_done(link)
        if refusal is None:
            self._queue(link, listener.accept_frame)
            link.manager.tell(LinkUp(link=link.id, hello=message))
            return True
        logger.error("Refusing link from %s: %s", link.name, refusal)
        self._queue(link, encode_frame(self._codec.encode(HelloRefused(reason=refusal))))
        self._start_closing(link, f"refused: {refusal}")
        return False

    # -- writing -------------------------------------------------------------------------------

    def _write(self, link_id: int, frame: bytes, data: bool, on_sent: OnSent) -> None:
        link = self._links.get(link_id)
        if link is None or link.closing:
            if data:
                logger.warning("Dropped an application message: link %s has closed", link_id)
            notify_sent(on_sent)
            return
        self._touch(link)
        self._queue(link, frame, data, on_sent)

    def _queue(self, link: _Link, frame: bytes, data: bool = False, on_sent: OnSent = None) -> None:
        """Queue a frame. Membership frames piling up past ``max_outbound_bytes`` mean the peer
        does not read: the link closes. Application frames do not count: the flow gate bounds
        them, and makes their senders wait."""
        limit = self._settings.max_outbound_bytes
        membership_bytes = link.outbound_bytes - link.data_bytes
        if not data and membership_bytes and membership_bytes + len(frame) > limit:
            reason = (
                f"its outbound buffer is full ({link.outbound_bytes} bytes, the limit is {limit}): "
                "the peer does not keep up"
            )
            logger.warning("Closing link to %s: %s", link.name, reason)
            notify_sent(on_sent)
            self._finish(link, reason)
            return
        if data:
            link.data.append((frame, on_sent))
            link.data_bytes += len(frame)
        else:
            link.control.append(frame)
        link.outbound_bytes += len(frame)
        self._unflushed[link.id] = link  # sent at the end of this round, with the rest

    def _flush_written(self) -> None:
        """Send what this round of the loop queued: frames written together go out together."""
        written, self._unflushed = self._unflushed, {}
        for link in written.values():
            if self._links.get(link.id) is link and not link.connecting:
                self._guarded(self._flush, link)

    def _flush(self, link: _Link) -> None:
        """Send what the socket takes now, membership frames first; watch for writability while
        anything is left."""
        while link.outbound_bytes:
            batch = self._next_batch(link)
            size = sum(len(queued.frame) for queued in batch)
            try:
                sent = link.sock.send(b"".join(queued.frame for queued in batch))
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                self._requeue(link, batch)
                self._finish(link, f"write failed: {error}")
                return
            self._consume(link, batch, sent)
            if sent < size:
                break
        if not link.outbound_bytes and link.closing is not None:
            self._finish(link, link.closing)
            return
        self._watch(link, selectors.EVENT_WRITE if link.outbound_bytes else 0)

    @staticmethod
    def _next_batch(link: _Link) -> list[_Queued]:
        """Up to ``_WRITE_BATCH_BYTES`` from the head: the frame on its way, then membership
        frames, then application frames (each lane in its order)."""
        batch: list[_Queued] = []
        size = 0
        if link.current is not None:
            batch.append(link.current)
            size = len(link.current.frame)
            link.current = None
        while link.control and size < _WRITE_BATCH_BYTES:
            frame = link.control.popleft()
            batch.append(_Queued(frame, None, False, len(frame)))
            size += len(frame)
        while link.data and size < _WRITE_BATCH_BYTES:
            frame, on_sent = link.data.popleft()
            batch.append(_Queued(frame, on_sent, True, len(frame)))
            size += len(frame)
        return batch

    @staticmethod
    def _consume(link: _Link, batch: list[_Queued], sent: int) -> None:
        """Account for ``sent`` bytes of ``batch``: frames sent in full are done; a partly sent
        one becomes the frame on its way, and the rest go back to the head of their lanes."""
        link.outbound_bytes -= sent
        for index, queued in enumerate(batch):
            if sent >= len(queued.frame):
                sent -= len(queued.frame)
                if queued.data:
                    link.data_bytes -= queued.size
                notify_sent(queued.on_sent)
                continue
            link.current = queued._replace(frame=memoryview(queued.frame)[sent:])
            IoLoop._requeue(link, batch[index + 1 :])
            return

    @staticmethod
    def _requeue(link: _Link, frames: list[_Queued]) -> None:
        """Put unsent frames back at the head of their lanes, in their order."""
        for queued in reversed(frames):
            frame = bytes(queued.frame)
            if queued.data:
                link.data.appendleft((frame, queued.on_sent))
            else:
                link.control.appendleft(frame)

    def _watch(self, link: _Link, write: int) -> None:
        interest = write | (0 if link.closing else selectors.EVENT_READ)
        if link.connecting:
            interest = selectors.EVENT_READ | selectors.EVENT_WRITE
        if interest != link.interest:
            link.interest = interest
            self._selector.modify(link.sock, interest, link.handler)

    # -- closing -------------------------------------------------------------------------------

    def _close_by_id(self, link_id: int, reason: str) -> None:
        link = self._links.get(link_id)
        if link is not None:
            self._start_closing(link, reason)

    def _start_closing(self, link: _Link, reason: str) -> None:
        """Close once the queued frames have gone out, or after ``connect_timeout``."""
        if link.closing is not None:
            return
        if not link.outbound_bytes:
            self._finish(link, reason)
            return
        link.closing = reason
        self._watch(link, selectors.EVENT_WRITE)
        self._after(self._settings.connect_timeout, lambda: self._finish(link, reason))

    def _finish(self, link: _Link, reason: str) -> None:
        """Close the socket now and tell the manager why (once)."""
        if self._links.get(link.id) is not link:
            return
        del self._links[link.id]
        if link.timer is not None:
            link.timer.cancel()
        self._release_handshake(link)
        self._drop_outbound(link, reason)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(link.sock)
        with contextlib.suppress(OSError):
            link.sock.shutdown(socket.SHUT_RDWR)
        link.sock.close()
        logger.debug("Link %s to %s closed: %s", link.id, link.name, reason)
        with contextlib.suppress(pykka.ActorDeadError):
            link.manager.tell(LinkClosed(link=link.id, peer=link.peer, reason=reason))

    @staticmethod
    def _drop_outbound(link: _Link, reason: str) -> None:
        """The link is gone: its unsent frames are dropped (application ones said so: their
        asks fail by the member's removal or their timeout, tells are lost)."""
        dropped = [queued.on_sent for queued in (link.current,) if queued and queued.data]
        dropped += [on_sent for _, on_sent in link.data]
        if dropped:
            logger.warning(
                "Dropped %d unsent application message(s) to %s: %s",
                len(dropped),
                link.name,
                reason,
            )
        for on_sent in dropped:
            notify_sent(on_sent)
        link.current = None
        link.data.clear()
        link.control.clear()
        link.outbound_bytes = link.data_bytes = 0

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self._settings.idle_timeout
        for link in [link for link in self._links.values() if link.idle_close]:
            if link.last_active < deadline:
                self._start_closing(link, f"idle for {self._settings.idle_timeout:g} s")


def notify_sent(on_sent: OnSent) -> None:
    """Call a frame's ``on_sent``, if any; a failing one is logged, never raised."""
    if on_sent is not None:
        try:
            on_sent()
        except Exception:
            logger.exception("A frame's on_sent callback failed")


def _resolve(address: Address) -> tuple[int, tuple[Any, ...]]:
    """The socket family and address to connect to (a name through the resolver)."""
    try:
        ip = ipaddress.ip_address(address.host)
    except ValueError:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM
        )[0]
        return family, sockaddr
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return family, (address.host, address.port)
