"""TransportActor: the connection actor of a node, which decides what travels on which link.

The sockets belong to the node's ``IoLoop``; this actor keeps the link table and routes ``SendTo``
(dialling a link on first use), ``Reply`` and ``Broadcast`` to it, encoding each message once. It
is the one owner of the routes to members: everything sent to a member by address (the ordering
actor's envelopes too) passes here, so frames to one member keep their order and none is written
to a link after this actor has replaced it. It never blocks: it runs on the I/O thread, and every
socket operation is a call of the ``IoLoop``'s that only queues frames or registers a socket. It
offers its routes (``shared_routes``) to the threads that write an envelope straight to its link
(``actors.messaging.lane``); such a write goes after what this actor queued on that link. It
starts deaf: it accepts no link and dials none until ``Listen`` names the actor that takes what
the links bring, so nothing can come in before the node is wired.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

import pykka

from actors.dispatch.actor import DispatchedActor
from actors.transport.loop import HelloCheck, IoLoop
from messages.address import Address
from messages.local.commands import Listen
from messages.local.links import ClientGone, LinkClosed, LinkEnd, LinkUp
from messages.local.routing import SendRun
from messages.membership.effects import (
    Broadcast,
    CloseLink,
    Disconnect,
    PeerGone,
    Reply,
    SendTo,
    Termination,
    TerminationKind,
    Watching,
)
from messages.messaging.envelope import Envelope
from messages.wire.framing import Codec, encode_frame
from messages.wire.handshake import Hello, HelloAccepted, Role, keeps_dialled_link

__all__ = [
    "TransportActor",
    "bind_listener",
]

logger = logging.getLogger(__name__)


class TransportActor(DispatchedActor):
    """One link per peer member, whichever end dialled it, and the links of watching clients.

    A link to a member is dialled on first use, or is the one that member dialled (its ``Hello``
    names its address): it then carries both ends' messages. When two members dial each other at
    once, both keep the link dialled by the member with the lower address, and the other member
    closes the link it dialled (after flushing it; this end reads it to its end, so nothing sent on
    either is lost), so a member holds one link per peer it talks to. A dialled link closes after
    ``idle_timeout`` without traffic, on ``CloseLink``, or when it fails; the next send dials
    again. Accepted links from clients get every ``Broadcast``. The close of a member's link by
    the peer, or a refused dial to it, is told to ``Listen.peer_news`` as ``PeerGone``.
    """

    def __init__(
        self,
        *,
        loop: IoLoop,
        listener: socket.socket | None,
        hello: Hello,
        check_hello: HelloCheck,
        codec: Codec,
        supervisor: pykka.ActorRef[Any] | None = None,
        shared_routes: dict[Address, int] | None = None,
    ) -> None:
        super().__init__()
        if (hello.address is None) != (listener is None):
            raise ValueError("a member listens at the address its Hello names; a client neither")
        self._loop = loop
        self._listener = listener
        self._hello = hello
        self._address = hello.address
        self._check_hello = check_hello
        self._codec = codec
        self._deliver_to: pykka.ActorRef[Any] | None = None  # set by Listen
        self._peer_news: pykka.ActorRef[Any] | None = None  # set by Listen
        self._supervisor = supervisor
        self._routes: dict[Address, int] = {}  # the link that carries our messages to a member
        # The same routes, offered to writers in other threads (``actors.messaging.lane``): only
        # this actor changes it, and only where it changes ``_routes``.
        self.shared_routes: dict[Address, int] = {} if shared_routes is None else shared_routes
        self._peers: dict[int, Address] = {}  # the member at the other end of a member link
        self._dialled: set[int] = set()
        self._clients: set[int] = set()
        self._client_links: dict[int, str] = {}  # a client's links, by number: its uuid

    def on_failure(self, *exc_info: Any) -> None:
        if self._supervisor is not None:
            reason = f"transport crashed: {exc_info[1]!r}"
            self._supervisor.tell(Termination(TerminationKind.FAILED, reason))

    def on_receive(self, message: Any) -> Any:
        match message:
            case Listen(deliver_to=deliver_to, peer_news=peer_news):
                self._peer_news = peer_news
                self._listen(deliver_to)
            case SendTo(address=address, message=payload, on_sent=on_sent):
                self._send_to(address, payload, on_sent)
            case SendRun(address=address, frames=frames, on_sent=on_sent):
                self._loop.send_many(self._route_to(address), frames, on_sent=on_sent)
            case Reply(link=link, message=payload, on_sent=on_sent):
                self._write(link, payload, on_sent)
            case Broadcast(message=payload):
                if self._clients and (frame := self._loop.encode(payload)) is not None:
                    for link in self._clients:
                        self._loop.write(link, frame)
            case LinkUp(link=link, hello=hello):
                self._link_up(link, hello)
            case Watching(link=link):
                self._clients.add(link)
            case LinkClosed(link=link, reason=reason, end=end):
                self._link_closed(link, reason, end)
            case CloseLink(address=address, reason=reason):
                self._close(address, reason)
            case Disconnect(link=link, reason=reason):
                self._loop.close(link, reason)
            case _:
                logger.warning("TransportActor ignores unexpected message %r", message)
        return None

    def _listen(self, deliver_to: pykka.ActorRef[Any]) -> None:
        self._deliver_to = deliver_to
        if self._listener is None:
            return  # a client's transport: it only dials
        self._loop.listen(
            self._listener,
            accept_frame=encode_frame(self._codec.encode(HelloAccepted(uuid=self._hello.uuid))),
            uuid=self._hello.uuid,
            check_hello=self._check_hello,
            deliver_to=deliver_to,
            manager=self.actor_ref,
        )

    def _write(self, link: int, message: Any, on_sent: Any) -> None:
        self._loop.send(link, message, data=isinstance(message, Envelope), on_sent=on_sent)

    def route(self, address: Address) -> int | None:
        """The link that carries messages to the member at ``address`` now, if any."""
        return self._routes.get(address)

    def _send_to(self, address: Address, message: Any, on_sent: Any = None) -> None:
        self._write(self._route_to(address), message, on_sent)

    def _route_to(self, address: Address) -> int:
        """The link to the member at ``address``, dialled if there is none."""
        link = self.route(address)
        if link is None:
            if self._deliver_to is None:
                raise RuntimeError(f"a message to {address} before Listen: no one takes replies")
            link = self._loop.dial(
                address,
                b"",
                hello=self._hello,
                deliver_to=self._deliver_to,
                manager=self.actor_ref,
                idle_close=True,
            )
            self._set_route(address, link)
            self._peers[link] = address
            self._dialled.add(link)
        return link

    def _link_up(self, link: int, hello: Hello) -> None:
        address = hello.address
        if hello.role is Role.CLIENT:
            self._client_links[link] = hello.uuid
            return
        if address is None or address == self._address:
            return
        self._peers[link] = address
        current = self._routes.get(address)
        if current is None:
            self._set_route(address, link)
        elif (
            current in self._dialled
            and self._address is not None
            and keeps_dialled_link(self._address, address)
        ):
            # Both dialled at once; the dialler of the other link closes it (this end reads it
            # to its end: closing it here lost what the peer had sent on it).
            logger.debug("Link %d from %s is a duplicate; its dialler closes it", link, address)
        else:  # theirs stays; or a link from the member (or its next incarnation) replaces one
            self._set_route(address, link)
            logger.debug("Link %d to %s is replaced by link %d", current, address, link)
            self._loop.close(current, "replaced by the link the member dialled")

    def _link_closed(self, link: int, reason: str, end: LinkEnd) -> None:
        """Forget a closed link; when it was the route to a member and its close tells of the
        peer (closed by it, or refused), tell ``peer_news``: evidence the process may be gone."""
        self._clients.discard(link)
        self._dialled.discard(link)
        client = self._client_links.pop(link, None)
        if client is not None and client not in self._client_links.values():
            self._tell_deliver_to(ClientGone(client))
        address = self._peers.pop(link, None)
        if address is not None and self._routes.get(address) == link:
            self._drop_route(address)
            logger.debug("Link to %s closed: %s", address, reason)
            if end is not LinkEnd.LOCAL and self._peer_news is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    self._peer_news.tell(PeerGone(address, refused=end is LinkEnd.REFUSED))

    def _tell_deliver_to(self, message: ClientGone) -> None:
        if self._deliver_to is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self._deliver_to.tell(message)

    def _close(self, address: Address, reason: str) -> None:
        link = self._routes.get(address)
        if link is not None:
            self._drop_route(address)
            self._loop.close(link, reason)

    def _set_route(self, address: Address, link: int) -> None:
        self._routes[address] = link
        if self.shares(address):
            self.shared_routes[address] = link
        else:
            self.shared_routes.pop(address, None)

    def _drop_route(self, address: Address) -> None:
        del self._routes[address]
        self.shared_routes.pop(address, None)

    def shares(self, address: Address) -> bool:
        """Whether the route to ``address`` is offered to other threads' writers (a test double
        that must see every send to it says no)."""
        return True


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
