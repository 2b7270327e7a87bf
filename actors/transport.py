"""TransportActor: the listening socket and the links of one node, dialled lazily per peer."""

from __future__ import annotations

import contextlib
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
from messages.framing import Codec
from messages.links import (
    Accepted,
    BlockPeers,
    Broadcast,
    Forget,
    IdleTick,
    LinkClosed,
    LinkUp,
    Send,
    SendTo,
)
from messages.protocol import Hello, Role

logger = logging.getLogger(__name__)


class TransportActor(pykka.ThreadingActor):
    """Routes ``SendTo(address, message)`` to one dialled link per peer and accepts inbound links.

    A node holds links only to peers it talks to: a link is dialled on first use, closed after
    ``idle_timeout`` without sends or on ``Forget``, and dropped when it fails (the next send dials
    again). Accepted links from clients are kept for ``Broadcast``.
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
        terminated: pykka.Future[str] | None = None,
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
        self._clients: dict[str, pykka.ActorRef[Any]] = {}
        self._blocked: frozenset[Address] = frozenset()
        self._ticker: Ticker | None = None

    def on_start(self) -> None:
        threading.Thread(target=self._accept_loop, name="acceptor", daemon=True).start()
        self._ticker = Ticker(self.actor_ref, IdleTick(), self._settings.idle_timeout / 2)

    def on_stop(self) -> None:
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
            settle(self._terminated, f"transport crashed: {exc_info[1]!r}")

    def on_receive(self, message: Any) -> Any:
        match message:
            case SendTo(address=address) if address in self._blocked:
                pass
            case SendTo(address=address, message=payload):
                self._send_to(address, payload)
            case Broadcast(message=payload):
                for link in self._clients.values():
                    with contextlib.suppress(pykka.ActorDeadError):  # LinkClosed will follow
                        link.tell(Send(payload))
            case LinkUp(link=link, hello=hello) if hello.role is Role.CLIENT:
                self._clients[link.actor_urn] = link
            case LinkUp():
                pass
            case LinkClosed(link=link, peer=peer, reason=reason):
                self._drop(link, peer, reason)
            case Forget(address=address):
                self._close(address)
            case BlockPeers(addresses=addresses):
                self._blocked = addresses
                for address in addresses:
                    self._close(address)
            case IdleTick():
                self._close_idle()
            case Accepted(sock=sock):
                link = self._start_link(sock=sock, check_hello=self._check_hello)
                self._accepted[link.actor_urn] = link
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

    def _start_link(self, **endpoint: Any) -> pykka.ActorRef[Any]:
        return ConnectionActor.start(
            codec=self._codec,
            deliver_to=self._deliver_to,
            manager=self.actor_ref,
            max_frame_bytes=self._settings.max_frame_bytes,
            io_timeout=self._settings.connect_timeout,
            local_uuid=self._hello.uuid,
            **endpoint,
        )

    def _drop(self, link: pykka.ActorRef[Any], peer: Address | None, reason: str) -> None:
        if peer is not None and self._dialled.get(peer) is link:
            del self._dialled[peer]
            self._last_send.pop(peer, None)
            logger.debug("Link to %s closed: %s", peer, reason)
        else:
            self._accepted.pop(link.actor_urn, None)
            if self._clients.pop(link.actor_urn, None) is not None:
                logger.info("Client link closed: %s", reason)

    def _close(self, address: Address) -> None:
        link = self._dialled.pop(address, None)
        self._last_send.pop(address, None)
        if link is not None:
            link.stop(block=False)

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self._settings.idle_timeout
        for address in [a for a, t in self._last_send.items() if t < deadline]:
            logger.debug("Closing idle link to %s", address)
            self._close(address)

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # listener closed on stop
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
