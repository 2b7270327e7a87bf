"""Acceptor: the listening side of the I/O thread, up to each accepted link's checked handshake.

It accepts without blocking, at most ``_ACCEPTS_PER_EVENT`` per readiness event; out of file
descriptors (or other resources), it stops watching the listener for a while and keeps accepting
after. Accepted connections still waiting for their ``Hello`` are bounded: at
``max_pending_handshakes`` it stops accepting until one completes or times out (the others wait
in the kernel's listen backlog, so a burst of peers is delayed, never refused); a remote address
holding ``max_pending_handshakes_per_source`` of them has its next connections closed, but only
while another address is waiting too (a fair share, not a cap on the only source: every member
of a one-host cluster shares 127.0.0.1; docs/architecture.md). Each must send its ``Hello``
within ``handshake_timeout``, in a first frame of at most ``HANDSHAKE_FRAME_BYTES``.
A ``Hello`` the listener's check accepts is answered with its accept frame and ``LinkUp``; any other
first frame, with ``HelloRefused`` and the link's close. With a shared secret
(``Settings.secret``), an accepted ``Hello`` is answered with a ``HelloChallenge`` on a fresh
nonce, and only a ``HelloProof`` that checks (``messages.wire.handshake.check_proof``) makes the
link up: any other next frame is refused, logged, and the link closed, and nothing it carried is
read; the handshake's timeout, frame size and pending-handshake bounds cover both frames.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import selectors
import socket
from typing import Any

import pykka

from actors.transport.link import HelloCheck, Link, configure_socket
from actors.transport.table import LinkTable
from messages.local.links import LinkUp
from messages.settings import Settings
from messages.wire.framing import Codec, FrameDecoder, encode_frame
from messages.wire.handshake import (
    HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    Hello,
    HelloRefused,
    Identity,
    challenge,
    check_proof,
    handshake_frames,
)

__all__ = ["Acceptor", "Listener"]

logger = logging.getLogger(__name__)

_ACCEPTS_PER_EVENT = 64
_ACCEPT_BACKOFF_MIN = 0.05  # after EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources
_ACCEPT_BACKOFF_MAX = 1.0
_CONNECTION_ABORTED = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR})


class Listener:
    """A listening socket, and what its accepted links are checked against and told to."""

    __slots__ = ("accept_frame", "check_hello", "deliver_to", "manager", "sock", "uuid")

    def __init__(
        self,
        sock: socket.socket,
        accept_frame: bytes,
        uuid: str,
        check_hello: HelloCheck,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
    ) -> None:
        self.sock = sock
        self.accept_frame = accept_frame
        self.uuid = uuid  # the accepting member's, which its proofs bind
        self.check_hello = check_hello
        self.deliver_to = deliver_to
        self.manager = manager


class Acceptor:
    """The listener and the handshakes of accepted links; loop thread only."""

    def __init__(
        self,
        table: LinkTable,
        selector: selectors.BaseSelector,
        codec: Codec,
        settings: Settings,
    ) -> None:
        self._table = table
        self._selector = selector
        self._codec = codec
        self._settings = settings
        self._handshakes_by_source: collections.Counter[str] = collections.Counter()
        self._refused_since_log = 0
        self._listener: Listener | None = None
        self._backoff = _ACCEPT_BACKOFF_MIN
        self._backing_off = False  # out of resources: the listener rests a while
        self._watched = False  # the listener is in the selector

    def listen(self, listener: Listener) -> None:
        """Accept connections on ``listener`` from now on."""
        listener.sock.setblocking(False)
        self._listener = listener
        self._watch()

    def _watch(self) -> None:
        """Watch the listener exactly while it may accept: not resting after running out of
        resources, and fewer than ``max_pending_handshakes`` handshakes pending."""
        listener = self._listener
        wanted = (
            listener is not None
            and not self._backing_off
            and self._pending() < self._settings.max_pending_handshakes
        )
        if wanted == self._watched:
            return
        assert listener is not None
        if wanted:
            self._selector.register(listener.sock, selectors.EVENT_READ, self._on_acceptable)
        else:
            self._selector.unregister(listener.sock)
        self._watched = wanted

    def _pending(self) -> int:
        return sum(self._handshakes_by_source.values())

    def close(self) -> None:
        """The loop ends: close the listening socket."""
        listener, self._listener = self._listener, None
        if listener is not None and self._watched:
            self._selector.unregister(listener.sock)
        self._watched = False
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.sock.close()

    def handshake(self, link: Link, message: Any) -> bool:
        """Check an accepted link's next handshake message; True if the link may be read on
        (it is up, or, with a secret, its ``Hello`` is challenged and its proof is next)."""
        listener = self._listener
        assert link.check_hello is not None
        assert listener is not None
        hello = message
        if link.challenge is not None:  # a Hello challenged: this must be its proof
            hello, nonce = link.challenge
            refusal = check_proof(self._settings, listener.uuid, hello, nonce, message)
        elif not isinstance(message, Hello):
            refusal = f"expected Hello as first frame, got {type(message).__name__}"
        elif (refusal := link.check_hello(message)) is None and self._settings.secret is not None:
            nonce = os.urandom(NONCE_BYTES)  # fresh: a recorded proof never fits it
            link.challenge = (message, nonce)
            answer = challenge(self._settings, listener.uuid, message, nonce)
            self._table.queue(link, encode_frame(self._codec.encode(answer)))
            return True
        self._handshake_done(link)
        if refusal is None:
            link.identity = Identity.of(hello)
            self._table.queue(link, listener.accept_frame)
            with contextlib.suppress(pykka.ActorDeadError):  # the node is stopping
                link.manager.tell(LinkUp(link=link.id, hello=hello))
            return True
        logger.error("Refusing link from %s: %s", link.name, refusal)
        self._table.queue(link, encode_frame(self._codec.encode(HelloRefused(reason=refusal))))
        self._table.start_closing(link, f"refused: {refusal}")
        return False

    def _on_acceptable(self, _mask: int) -> None:
        listener = self._listener
        assert listener is not None
        for _ in range(_ACCEPTS_PER_EVENT):
            if not self._watched:  # at the pending-handshake limit: the rest wait in the backlog
                break
            try:
                sock, remote = listener.sock.accept()
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno in _CONNECTION_ABORTED:
                    continue
                self._back_off(listener, error)
                return
            self._backoff = _ACCEPT_BACKOFF_MIN
            self._on_accepted(sock, str(remote[0]), listener)

    def _back_off(self, listener: Listener, error: OSError) -> None:
        """Stop watching the listener for a while: level-triggered, it would wake us at once."""
        delay = self._backoff
        self._backoff = min(delay * 2, _ACCEPT_BACKOFF_MAX)
        logger.warning("Cannot accept connections: %s; retrying in %.2f s", error.strerror, delay)
        self._backing_off = True
        self._watch()

        def resume() -> None:
            if self._listener is listener:
                self._backing_off = False
                self._watch()

        self._table.after(delay, resume)

    def _on_accepted(self, sock: socket.socket, source: str, listener: Listener) -> None:
        settings = self._settings
        pending = self._pending()
        mine = self._handshakes_by_source[source]
        if mine >= settings.max_pending_handshakes_per_source and pending > mine:
            sock.close()  # over its share while another address waits too
            if not self._refused_since_log:
                logger.warning(
                    "%d connections from %s are waiting for their Hello (%d in all), over its "
                    "share while others wait: closing its new ones until some complete or time "
                    "out",
                    mine,
                    source,
                    pending,
                )
            self._refused_since_log += 1
            return
        if self._refused_since_log:
            logger.warning(
                "Closed %d connections over the handshake limit", self._refused_since_log
            )
            self._refused_since_log = 0
        try:
            configure_socket(sock, settings)
            name = "{}:{}".format(*sock.getpeername()[:2])
        except OSError as error:
            sock.close()
            logger.debug("Accepted connection unusable: %s", error)
            return
        link = Link(
            self._table.new_id(),
            sock,
            name,
            peer=None,
            source=source,
            deliver_to=listener.deliver_to,
            manager=listener.manager,
            decoder=FrameDecoder(
                settings.max_frame_bytes, HANDSHAKE_FRAME_BYTES, handshake_frames(settings)
            ),
            check_hello=listener.check_hello,
            idle_close=False,
        )
        self._handshakes_by_source[source] += 1
        if pending + 1 == settings.max_pending_handshakes:
            logger.warning(
                "%d connections are waiting for their Hello, the limit: accepting no more until "
                "some complete or time out",
                pending + 1,
            )
        self._watch()
        link.on_finish = lambda: self._release_handshake(link)
        self._table.add(link, selectors.EVENT_READ)
        timeout = settings.handshake_timeout
        link.timer = self._table.after(timeout, lambda: self._handshake_overdue(link, timeout))

    def _handshake_overdue(self, link: Link, timeout: float) -> None:
        if link.check_hello is not None and self._table.holds(link):
            missing = "Hello" if link.challenge is None else "proof of the shared secret"
            reason = f"no {missing} from {link.name} within {timeout:g} s"
            logger.warning("Closing link: %s", reason)
            self._table.finish(link, reason)

    def _handshake_done(self, link: Link) -> None:
        link.check_hello = None
        link.challenge = None
        if link.timer is not None:
            link.timer.cancel()
        self._release_handshake(link)

    def _release_handshake(self, link: Link) -> None:
        """Give back an accepted link's handshake slot (once)."""
        link.on_finish = None
        if link.source is not None:
            self._handshakes_by_source[link.source] -= 1
            if self._handshakes_by_source[link.source] <= 0:
                del self._handshakes_by_source[link.source]
            link.source = None
            self._watch()
