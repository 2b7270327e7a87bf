"""IoLoop: the one thread of a node (or client), serving every socket, every timer, its actors.

A ``selectors`` loop: non-blocking accept, connect, read and write on every link, frames decoded
into messages in this thread and told to actors as ``Inbound``; outbound frames buffered per link
and written as the socket takes them. Actors use it through a thread-safe API (``dial``,
``write``, ``close``, ``listen``, ``call_later``, ``call_every``): from another thread it queues a
command and wakes the loop; from the loop's own thread it runs the command at once (after those
queued before it), so no actor ever blocks on a socket, and a node's thread count does not depend
on how many peers or clients it has. One call writes in the caller's thread instead:
``write_now``, an application frame on an established plain link, straight to its socket (the
link's lock orders it with the loop's own writes; what the socket does not take, the loop sends).

The loop hosts the node's ``Dispatcher`` (``dispatcher``: ``actors.dispatch``): after each pass
over the sockets, the commands and the due timers, it gives the actors with mail their turns for
at most ``_DISPATCH_BUDGET`` (then one more turn at most), and selects without waiting while some
still have mail. So a frame read goes to the ordering actor, the router and on by calls and deque
appends, and what an actor writes is flushed in the same pass: no thread handoff between the
sockets and the node's actors. A member's heartbeats from live members are answered here, in the
read (``answer_heartbeats``), so an actor backlog delays them by at most that budget and a turn.

Why ``selectors`` and not asyncio: the loop runs callbacks that are a few lines each and hands
everything else to actors; ``selectors`` gives exactly that with no second concurrency model (no
coroutines, no asyncio locks) beside pykka's, and its behaviour under load is easy to reason about.

Bounds, each logged when it bites: a link's outbound buffer (``max_outbound_bytes``: a peer that
does not keep up is disconnected), open links (``max_links``: the least recently used one is
closed), accepted connections still waiting for their ``Hello`` (``max_pending_handshakes``, and
``max_pending_handshakes_per_source`` per remote address; each must complete it within
``handshake_timeout`` in a first frame of at most ``HANDSHAKE_FRAME_BYTES``; with a shared secret,
its proof too, and a dialled link's frames wait for the member's proof as long), frame size
(``max_frame_bytes``). Out of file descriptors, the listener backs off and keeps accepting.
Inbound, the node's backlog (``actors.transport.backlog``): a link whose envelopes took it over
``max_inbound_messages``/``max_inbound_bytes`` is not read until it drains below half (but once per
``read_pause_limit``, for the heartbeats behind them), so TCP makes its sender wait.

With a ``TlsConfig``, every link's bytes pass through its TLS layer (``actors.transport.tls``, on
memory BIOs: why there) between the socket and the frames; the handshake bounds above cover the TLS
handshake too.

The loop is composed of parts, one module and one logger each, which it calls and which call back
only through what it hands them: a link's state and outbound lanes (``actors.transport.link``), the
table of links and how frames go out and links end (``LinkTable``, ``actors.transport.table``), the
accepting side (``Acceptor``, ``actors.transport.accept``) and the dialling side (``Dialler``,
``actors.transport.dial``); here, the thread, its inbound path and its API.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.dispatch.actor import tell_now
from actors.dispatch.dispatcher import Dispatcher
from actors.transport.accept import Acceptor, Listener
from actors.transport.backlog import Backlog, envelopes_in
from actors.transport.dial import Dialler, cannot_connect, is_ip_address, resolve
from actors.transport.link import HelloCheck, Link, OnSent, notify_sent, write_now
from actors.transport.table import LinkTable, link_end, tell_closed
from actors.transport.timers import Timer, TimerQueue
from actors.transport.tls import Tls, TlsConfig
from actors.transport.traffic import Traffic
from messages.address import Address
from messages.local.links import LinkEnd
from messages.membership.answerer import HeartbeatAnswerer
from messages.membership.effects import Inbound
from messages.settings import Settings
from messages.wire.framing import HEADER_BYTES, Codec, FrameError, encode_frame
from messages.wire.handshake import Hello, HelloAccepted, HelloRefused, Identity, Role

__all__ = ["HelloCheck", "IoLoop", "OnSent", "notify_sent"]

logger = logging.getLogger(__name__)

_READ_BYTES = 256 * 1024  # one recv per readiness event: a busy link cannot starve the others
_BACKLOG_POLL = 0.005  # how often paused links look at the backlog (only while one is paused)
_DISPATCH_BUDGET = 0.002  # actor turns per pass before the sockets are looked at again


class IoLoop:
    """The sockets and timers of one node, served by one thread (see the module docstring).

    Links are numbered; ``Inbound(message, link, peer, identity)`` goes to the link's
    ``deliver_to`` (``identity``: who the link's ``Hello``, or for a dialled link the peer's
    ``HelloAccepted``, said the peer is; that first answer is kept, not delivered) and
    ``LinkUp``/``LinkClosed`` to its ``manager`` (``LinkClosed`` once per link, with the reason).
    ``traffic`` counts the messages and bytes that pass, by type; ``link_count`` says how many
    links are open (both read from any thread, for metrics). ``dispatcher`` runs on this thread:
    the actors started in ``with loop.dispatcher.hosting():`` are its.
    """

    def __init__(
        self, codec: Codec, settings: Settings, name: str = "io", tls: TlsConfig | None = None
    ) -> None:
        self._codec = codec
        self.traffic = Traffic()
        self.backlog = Backlog.of(settings)
        # Every plain read lands here, and the frame decoder copies it out at once: a fresh
        # 256 KiB buffer per read made glibc raise its mmap threshold and keep the heap it grew.
        self._received = memoryview(bytearray(_READ_BYTES))
        self._read_pause = settings.read_pause_limit
        self._paused: dict[int, Link] = {}  # links not read while the backlog is full
        self._polling = False  # whether ``_poll_paused`` is due
        self._selector = selectors.DefaultSelector()
        self._timers = TimerQueue()
        secure = None if tls is None else Tls(tls, codec, _READ_BYTES)
        self._links = LinkTable(self._selector, self._timers, settings, self._on_event, secure)
        self._acceptor = Acceptor(self._links, self._selector, codec, settings)
        self._dialler = Dialler(self._links, codec, settings)
        self._stopping = False
        self._answerer: HeartbeatAnswerer | None = None
        self._wakeup_in, self._wakeup_out = socket.socketpair()
        self._wakeup_in.setblocking(False)
        self._wakeup_out.setblocking(False)
        self._wakeup_pending = False  # a wake-up byte not yet read: later ones are not needed
        self._commands: collections.deque[Callable[[], object]] = collections.deque()
        # The writes and close of a link dialled by name from this thread, held during its lookup.
        self._held: dict[int, list[Callable[[], None]]] = {}
        self._selector.register(self._wakeup_in, selectors.EVENT_READ, self._on_wakeup)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.dispatcher = Dispatcher(host=self)
        self._thread.start()
        self._every(settings.idle_timeout / 2, self._links.close_idle)

    # -- the thread-safe API ------------------------------------------------------------------

    def listen(
        self,
        sock: socket.socket,
        *,
        accept_frame: bytes,
        uuid: str,
        check_hello: HelloCheck,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
    ) -> None:
        """Accept connections on ``sock``; each must say a ``Hello`` that ``check_hello`` accepts
        (and with a secret, prove it), answered with ``accept_frame``; then ``manager`` gets
        ``LinkUp``. ``uuid`` is the accepting member's, which its proofs bind."""
        listener = Listener(sock, accept_frame, uuid, check_hello, deliver_to, manager)
        self._submit(lambda: self._acceptor.listen(listener))

    def dial(
        self,
        address: Address,
        first_frames: bytes,
        *,
        hello: Hello | None = None,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        idle_close: bool = False,
    ) -> int:
        """Connect to ``address`` and send ``hello`` (when given: with a secret, the first step of
        the authenticated handshake; nothing else goes out or comes in before it has ended), then
        ``first_frames``, before anything written later; returns the link's number at once. With
        ``idle_close``, the link closes after ``idle_timeout`` without traffic either way. A host
        name (not an IP address) is resolved in the caller's thread, or, when that is the loop's
        own (an actor it runs), in a short-lived thread of its own, the link's writes and close
        held until then: a slow resolver never holds up the I/O thread."""
        link_id = self._links.new_id()

        def dial(target: tuple[int, tuple[Any, ...]]) -> None:
            self._dialler.dial(
                link_id,
                address,
                target,
                first_frames,
                hello=hello,
                deliver_to=deliver_to,
                manager=manager,
                idle_close=idle_close,
            )

        def fail(error: OSError) -> None:
            tell_closed(manager, link_id, address, cannot_connect(address, error))

        if self._on_loop() and not is_ip_address(address.host):
            self._held[link_id] = []
            threading.Thread(
                target=self._look_up,
                args=(link_id, address, dial, fail),
                name=f"resolve-{address.host}",
                daemon=True,
            ).start()
            return link_id
        try:
            target = resolve(address)
        except OSError as error:
            self._submit(functools.partial(fail, error))
            return link_id
        self._submit(lambda: dial(target))
        return link_id

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread (``DispatcherHost``)."""
        return self._thread

    @property
    def link_count(self) -> int:
        """How many links are open now (a read of one number, safe from any thread)."""
        return len(self._links)

    def encode(self, message: Any) -> bytes | None:
        """``message`` as a frame, in the caller's thread; None (logged) if it cannot be."""
        try:
            frame = encode_frame(self._codec.encode(message))
        except TypeError as error:
            logger.error("Cannot send %r: %s", message, error)
            return None
        self.traffic.sent(message, len(frame))
        return frame

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

    def send_many(self, link_id: int, messages: list[Any], *, on_sent: OnSent = None) -> None:
        """``send`` several application messages, their frames in one write; ``on_sent`` once
        for all (those that cannot be encoded are dropped, logged)."""
        frames = [frame for frame in map(self.encode, messages) if frame is not None]
        if frames:
            self.write(link_id, b"".join(frames), data=True, on_sent=on_sent)
        else:
            notify_sent(on_sent)

    def write(
        self, link_id: int, frame: bytes, *, data: bool = False, on_sent: OnSent = None
    ) -> None:
        """Queue ``frame`` on the link (dropped if it has closed meanwhile). A ``data`` frame (an
        application message) goes after every membership frame queued, and ``on_sent`` is called
        once it has been written, or dropped."""
        self._submit(lambda: self._write(link_id, frame, data, on_sent))

    def write_now(self, link_id: int, frame: Callable[[], bytes], on_sent: OnSent) -> bool | None:
        """From any thread: write the application frame ``frame()`` makes on the link now, in
        this thread (``actors.transport.link.write_now``). True: written; None: what the socket
        did not take waits on the link, and the caller must ``flush`` it (once it holds no lock
        an ``on_sent`` may take); False (``frame`` not called): the link is not up for it (gone,
        TLS, in its handshake, closing), so ``write`` it instead."""
        link = self._links.get(link_id)
        return False if link is None else write_now(link, frame, on_sent)

    def flush(self, link_id: int) -> None:
        """Send what waits on the link as soon as the socket takes it."""
        self._submit(functools.partial(self._flush_link, link_id))

    def answer_heartbeats(self, answerer: HeartbeatAnswerer | None) -> None:
        """Answer the heartbeats ``answerer`` answers in this thread from now on, on the link they
        came by, instead of delivering them (None: deliver every one)."""

        def install() -> None:
            self._answerer = answerer

        self._submit(install)

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
        """Stop the dispatcher's actors still running (their ``on_stop``, on this thread), write
        what they queued, close every socket and end the thread (no ``LinkClosed`` is told: the
        owners stop). Waits up to ``timeout`` for the thread, unless called on it."""

        def stop() -> None:
            self._stopping = True

        self._submit(stop)
        if not self._on_loop():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Make the loop look at its commands and its dispatcher soon (``DispatcherHost``)."""
        if not self._wakeup_pending:
            self._wakeup_pending = True
            with contextlib.suppress(BlockingIOError, OSError):
                self._wakeup_out.send(b"\0")

    # -- plumbing between threads -------------------------------------------------------------

    def _on_loop(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def _submit(self, command: Callable[[], object]) -> None:
        """Run ``command`` on the loop's thread: at once when called there and nothing queued
        before it waits (so the order of commands is kept), else queued for the next pass."""
        if self._on_loop() and not self._commands:
            self._guarded(command)
            return
        self._commands.append(command)
        self.wake()

    def _on_wakeup(self, _mask: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wakeup_in.recv(4096)

    def _look_up(
        self,
        link_id: int,
        address: Address,
        dial: Callable[[tuple[int, tuple[Any, ...]]], None],
        fail: Callable[[OSError], None],
    ) -> None:
        """In a thread of its own: resolve ``address``, then dial (or fail) the held link in the
        loop's, and run what was held for it meanwhile."""
        try:
            target = resolve(address)
        except OSError as error:
            self._submit(functools.partial(self._release, link_id, functools.partial(fail, error)))
            return
        self._submit(lambda: self._release(link_id, lambda: dial(target)))

    def _release(self, link_id: int, first: Callable[[], None]) -> None:
        held = self._held.pop(link_id)
        first()
        for command in held:
            self._guarded(command)

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

    def _every(self, interval: float, action: Callable[[], None]) -> None:
        """Run ``action`` in the loop thread every ``interval`` seconds."""

        def run() -> bool:
            action()
            return True

        self._submit(lambda: self._timers.add(time.monotonic() + interval, Timer(run, interval)))

    # -- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        dispatcher = self.dispatcher
        with dispatcher.hosting():  # an actor started by one of the loop's actors is its too
            while not self._stopping:
                deadline = self._timers.next_deadline()
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0.0)
                if self._commands or dispatcher.has_mail:
                    timeout = 0.0
                for key, mask in self._selector.select(timeout):
                    self._guarded(key.data, mask)
                self._wakeup_pending = False
                if self._commands:
                    self._run_commands()
                self._guarded(self._timers.fire_due, time.monotonic())
                if dispatcher.has_mail:  # often none: the read ran its actors already
                    dispatcher.run(time.monotonic() + _DISPATCH_BUDGET)
                if self._paused:
                    self._guarded(self._resume_drained)
                self._flush_written()
            self._shutdown()

    def _run_commands(self) -> None:
        while self._commands:
            self._guarded(self._commands.popleft())

    def _flush_link(self, link_id: int) -> None:
        link = self._links.get(link_id)
        if link is not None:
            self._links.flush(link)

    def _flush_written(self) -> None:
        for link in self._links.take_written():
            self._guarded(self._links.flush, link)

    def _guarded(self, action: Callable[..., Any], *args: Any) -> None:
        """Run one handler; an error is a bug to log, never the end of the I/O thread."""
        try:
            action(*args)
        except Exception:
            logger.exception("I/O thread kept running after an error in %r", action)

    def _shutdown(self) -> None:
        self.dispatcher.close()  # what the actors' on_stop queues still goes out
        self._run_commands()
        self._flush_written()
        self._links.close_all()
        self._acceptor.close()
        self._selector.close()
        for sock in (self._wakeup_in, self._wakeup_out):
            sock.close()

    # -- a link's events -------------------------------------------------------------------------

    def _on_event(self, link: Link, mask: int) -> None:
        """A link's selector callback."""
        if not self._links.holds(link):
            return
        if mask & selectors.EVENT_WRITE:
            if link.connecting:
                self._dialler.connected(link)
            else:
                self._links.flush(link)
            if not self._links.holds(link):  # a failed connect or write closed it
                return
        if mask & selectors.EVENT_READ and not link.closing:
            self._read(link)

    def _read(self, link: Link) -> None:
        try:
            if link.tls is None:
                data: bytes | memoryview = self._received[: link.sock.recv_into(self._received)]
            else:
                data = link.tls.recv(_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._links.finish(link, f"connection error: {error}", link_end(error))
            return
        try:
            if not data:
                link.decoder.finish()
                self._links.finish(link, "closed by peer", LinkEnd.PEER)
                return
            self._links.touch(link)
            envelopes = False
            # Handled in the read while it is short (see ``tell_now``); told for a turn after.
            inline_until = time.monotonic() + _DISPATCH_BUDGET
            for payload in link.decoder.feed(data):
                message = self._codec.decode(payload)
                self.traffic.received(message, HEADER_BYTES + len(payload))
                if link.check_hello is not None:
                    if not self._acceptor.handshake(link, message):
                        return
                elif link.proving is not None:
                    if not self._dialler.challenged(link, message):
                        return
                elif link.identity is None and isinstance(message, HelloAccepted):
                    link.identity = Identity(message.uuid, Role.MEMBER, link.peer)  # dialled
                elif not self._answered(link, message):
                    if (load := envelopes_in(message)) is not None:
                        envelopes = True
                        self.backlog.read(load[1], load[0])
                    inbound = Inbound(message, link.id, link.name, link.identity)
                    if time.monotonic() < inline_until:
                        tell_now(link.deliver_to, inbound)  # here, when its actor is idle
                    else:
                        link.deliver_to.tell(inbound)
            if envelopes and self.backlog.over():
                self._pause(link)
        except FrameError as error:
            reason = f"bad input from {link.name}: {error}"
            logger.warning("Closing link: %s", reason)
            if link.check_hello is None:
                self._links.finish(link, reason)
                return
            # Before its Hello (a TLS ClientHello to a plain member, say): the peer hears why.
            refusal = HelloRefused(reason=f"bad first frame: {error}")
            self._links.queue(link, encode_frame(self._codec.encode(refusal)))
            self._links.start_closing(link, reason)
        except pykka.ActorDeadError:
            self._links.finish(link, "the actor this link delivers to has stopped")

    # -- backpressure ----------------------------------------------------------------------------

    def _pause(self, link: Link) -> None:
        """Stop reading ``link`` (its envelopes would go over the backlog's bound); look at the
        backlog every ``_BACKLOG_POLL`` while any link is paused."""
        self._paused[link.id] = link
        self.backlog.pauses += 1
        self._poll_soon()
        self._links.pause(link, time.monotonic())
        logger.debug("Link to %s paused: backlog %s", link.name, self.backlog.held)

    def _poll_paused(self) -> None:
        """Read the paused links again once the backlog has drained; a link paused for
        ``read_pause_limit`` gets one read anyway, so that the heartbeats queued behind its
        envelopes still arrive, and the sender's kernel (``TCP_USER_TIMEOUT``) keeps the link;
        it pauses again after it if the backlog is still full."""
        self._polling = False
        drained = self.backlog.drained()
        overdue = time.monotonic() - self._read_pause
        for link_id, link in list(self._paused.items()):
            overdue_link = link.paused is not None and link.paused <= overdue
            if drained or overdue_link or not self._links.holds(link):
                self._resume(link_id)  # a closed one is only forgotten
        self._poll_soon()

    def _resume_drained(self) -> None:
        """After the actors' turns, which take from the backlog: read the paused links again at
        once if it has drained, rather than at the next poll."""
        if self._paused and self.backlog.drained():
            for link_id in list(self._paused):
                self._resume(link_id)

    def _resume(self, link_id: int) -> None:
        """Read a paused link again (forget it if it has closed meanwhile)."""
        link = self._paused.pop(link_id)
        if not self._links.holds(link):
            return
        self._links.pause(link, None)
        if not link.closing:
            self._read(link)  # what TLS may hold decrypted gets no readiness event

    def _poll_soon(self) -> None:
        if self._paused and not self._polling:
            self._polling = True
            self._links.after(_BACKLOG_POLL, self._poll_paused)

    def _answered(self, link: Link, message: Any) -> bool:
        """Answer a heartbeat here if the answerer does (queued as a membership frame, as the
        membership actor's replies are): an actor backlog must not delay it."""
        ack = None if self._answerer is None else self._answerer.answer(message, link.identity)
        if ack is None:
            return False
        frame = self.encode(ack)
        if frame is not None:
            self._links.queue(link, frame, False, None)
        return True

    def _write(self, link_id: int, frame: bytes, data: bool, on_sent: OnSent) -> None:
        if (held := self._held.get(link_id)) is not None:  # its address is being looked up
            held.append(lambda: self._write(link_id, frame, data, on_sent))
            return
        link = self._links.get(link_id)
        if link is None or link.closing:
            if data:
                logger.warning("Dropped an application message: link %s has closed", link_id)
            notify_sent(on_sent)
            return
        self._links.touch(link)
        self._dialler.write(link, frame, data, on_sent)

    def _close_by_id(self, link_id: int, reason: str) -> None:
        if (held := self._held.get(link_id)) is not None:
            held.append(lambda: self._close_by_id(link_id, reason))
            return
        link = self._links.get(link_id)
        if link is not None:
            self._links.start_closing(link, reason)
