"""TransportActor: the listening socket and the links of one node, dialled lazily per peer."""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from typing import Any

import pykka

from actors.connection import ConnectionActor, HelloCheck
from actors.futures import settle
from actors.settings import Settings
from actors.timers import Ticker
from messages.address import Address
from messages.commands import Termination, TerminationKind
from messages.framing import Codec
from messages.links import (
    Accepted,
    BlockPeers,
    Broadcast,
    CloseLink,
    IdleTick,
    LinkClosed,
    LinkUp,
    Send,
    SendTo,
)
from messages.protocol import Hello, Role

logger = logging.getLogger(__name__)

# accept() errors that mean the listening socket is gone (closed on stop).
_LISTENER_GONE = frozenset({errno.EBADF, errno.EINVAL, errno.ENOTSOCK})
# accept() errors about one connection that died in the backlog: take the next one at once.
_CONNECTION_ABORTED = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN})
# Back-off after any other accept() error (EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources).
_ACCEPT_BACKOFF_MIN = 0.05
_ACCEPT_BACKOFF_MAX = 1.0


class TransportActor(pykka.ThreadingActor):
    """Routes ``SendTo(address, message)`` to one dialled link per peer and accepts inbound links.

    A node holds links only to peers it talks to: a link is dialled on first use, closed after
    ``idle_timeout`` without sends or on ``CloseLink``, and dropped when it fails (the next send
    dials again). Accepted links from clients are kept for ``Broadcast``. At most
    ``max_pending_handshakes`` accepted connections may be waiting for their ``Hello``; more are
    closed at once. The acceptor survives running out of file descriptors: it logs, backs off and
    keeps accepting.
    """

    def __init__(
        self,
        *,
        listener: socket.socket,
        hello: Hello,
        check_hello: HelloCheck,
        codec: Codec,
        deliver_to: pykka.ActorRef[Any],
        settings: Settings,
        terminated: pykka.Future[Termination] | None = None,
    ) -> None:
        super().__init__()
        self._terminated = terminated
        self._listener = listener
        self._hello = hello
        self._check_hello = check_hello
        self._codec = codec
        self._deliver_to = deliver_to
        self._settings = settings
        self._dialled: dict[Address, pykka.ActorRef[Any]] = {}
        self._last_send: dict[Address, float] = {}
        self._accepted: dict[str, pykka.ActorRef[Any]] = {}
        self._handshaking: set[str] = set()
        self._refused_since_log = 0
        self._clients: dict[str, pykka.ActorRef[Any]] = {}
        self._blocked: frozenset[Address] = frozenset()
        self._stalled: set[Address] = set()
        self._stopping = threading.Event()
        self._ticker: Ticker | None = None

    def on_start(self) -> None:
        threading.Thread(target=self._accept_loop, name="acceptor", daemon=True).start()
        self._ticker = Ticker(self.actor_ref, IdleTick(), self._settings.idle_timeout / 2)

    def on_stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.cancel()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the acceptor blocked in accept()
        self._listener.close()
        for link in [*self._dialled.values(), *self._accepted.values()]:
            link.stop(block=False)

    def on_failure(self, *exc_info: Any) -> None:
        self.on_stop()
        if self._terminated is not None:
            reason = f"transport crashed: {exc_info[1]!r}"
            settle(self._terminated, Termination(TerminationKind.FAILED, reason))

    def on_receive(self, message: Any) -> Any:
        match message:
            case SendTo(address=address) if address in self._blocked or address in self._stalled:
                if address in self._dialled:
                    self._stalled.add(address)  # the frame is lost: this link is stuck now
            case SendTo(address=address, message=payload):
                self._send_to(address, payload)
            case Broadcast(message=payload):
                for link in self._clients.values():
                    with contextlib.suppress(pykka.ActorDeadError):  # LinkClosed will follow
                        link.tell(Send(payload))
            case LinkUp(link=link, hello=hello):
                self._handshaking.discard(link.actor_urn)
                if hello.role is Role.CLIENT:
                    self._clients[link.actor_urn] = link
            case LinkClosed(link=link, peer=peer, reason=reason):
                self._drop(link, peer, reason)
            case CloseLink(address=address, reason=reason):
                logger.debug("Closing the link to %s: %s", address, reason)
                self._close(address)
            case BlockPeers(addresses=addresses):
                self._blocked = addresses
            case IdleTick():
                self._close_idle()
            case Accepted(sock=sock):
                self._on_accepted(sock)
            case _:
                logger.warning("TransportActor ignores unexpected message %r", message)
        return None

    def _send_to(self, address: Address, message: Any) -> None:
        try:
            self._link_to(address).tell(Send(message))
        except pykka.ActorDeadError:
            # The link died and its LinkClosed is still on its way: the next send dials again.
            # Membership messages are periodic, so losing this one costs one round at most.
            self._dialled.pop(address, None)
            logger.debug("Dropped %s to %s: its link just closed", type(message).__name__, address)
            return
        self._last_send[address] = time.monotonic()

    def _link_to(self, address: Address) -> pykka.ActorRef[Any]:
        link = self._dialled.get(address)
        if link is None:
            link = self._start_link(peer=address, hello=self._hello)
            self._dialled[address] = link
        return link

    def _on_accepted(self, sock: socket.socket) -> None:
        """Start a link for an accepted socket, unless too many are still waiting for a Hello."""
        limit = self._settings.max_pending_handshakes
        if len(self._handshaking) >= limit:
            sock.close()
            if not self._refused_since_log:
                logger.warning(
                    "%d connections are still waiting for their Hello (the limit): closing new "
                    "connections until some complete or time out",
                    limit,
                )
            self._refused_since_log += 1
            return
        if self._refused_since_log:
            logger.warning(
                "Closed %d connections over the handshake limit", self._refused_since_log
            )
            self._refused_since_log = 0
        link = self._start_link(sock=sock, check_hello=self._check_hello)
        self._accepted[link.actor_urn] = link
        self._handshaking.add(link.actor_urn)

    def _start_link(self, **endpoint: Any) -> pykka.ActorRef[Any]:
        settings = self._settings
        return ConnectionActor.start(
            codec=self._codec,
            deliver_to=self._deliver_to,
            manager=self.actor_ref,
            max_frame_bytes=settings.max_frame_bytes,
            io_timeout=settings.connect_timeout,
            unacked_timeout=settings.unacked_timeout,
            handshake_timeout=settings.handshake_timeout,
            local_uuid=self._hello.uuid,
            **endpoint,
        )

    def _drop(self, link: pykka.ActorRef[Any], peer: Address | None, reason: str) -> None:
        if peer is not None and self._dialled.get(peer) is link:
            del self._dialled[peer]
            self._last_send.pop(peer, None)
            self._stalled.discard(peer)
            logger.debug("Link to %s closed: %s", peer, reason)
        else:
            self._accepted.pop(link.actor_urn, None)
            self._handshaking.discard(link.actor_urn)
            if self._clients.pop(link.actor_urn, None) is not None:
                logger.info("Client link closed: %s", reason)

    def _close(self, address: Address) -> None:
        link = self._dialled.pop(address, None)
        self._last_send.pop(address, None)
        self._stalled.discard(address)
        if link is not None:
            link.stop(block=False)

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self._settings.idle_timeout
        for address in [a for a, t in self._last_send.items() if t < deadline]:
            logger.debug("Closing idle link to %s", address)
            self._close(address)

    def _accept_loop(self) -> None:
        """Accept connections until stopped; out of file descriptors, back off and try again
        (the connections wait in the listen backlog meanwhile)."""
        backoff = _ACCEPT_BACKOFF_MIN
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError as error:
                if self._stopping.is_set() or error.errno in _LISTENER_GONE:
                    return
                if error.errno in _CONNECTION_ABORTED:
                    continue
                logger.warning(
                    "Cannot accept connections: %s; retrying in %.2f s", error.strerror, backoff
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, _ACCEPT_BACKOFF_MAX)
                continue
            backoff = _ACCEPT_BACKOFF_MIN
            try:
                self.actor_ref.tell(Accepted(sock))
            except pykka.ActorDeadError:
                sock.close()
                return


def bind_listener(address: Address) -> socket.socket:
    """A listening TCP socket on ``address`` (raises OSError with the address when it is taken)."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((address.host, address.port))
    except OSError as error:
        listener.close()
        raise OSError(error.errno, f"cannot listen on {address}: {error.strerror}") from error
    listener.listen(128)
    return listener
