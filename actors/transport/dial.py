"""Dialler: the connecting side of the I/O thread, up to a dialled link's first write.

A connect is non-blocking, with its own deadline (``connect_timeout``), so a peer behind a
partition never holds up anything else; the link's first frames (its ``Hello``) are queued at once
and go out when the connect completes. A host name is resolved by ``resolve`` outside the I/O
thread (``IoLoop.dial`` says where). A dial that fails is told to its manager as ``LinkClosed``
(``LinkEnd.REFUSED`` when the peer's address refused it).

With a shared secret (``Settings.secret``), the ``Hello`` carries a fresh nonce and goes out
alone: every other frame is held back (``Proving``) until the accepting member's first frame has
proved the secret (``messages.wire.handshake.answer_challenge``), then follows this side's
``HelloProof``. Until then nothing the peer sent is delivered: a first frame that proves nothing
closes the link, with the reason logged, told to the peer (``HelloRefused``) and handed to the
link's actor as a ``HelloRefused`` of its own (a refused join); no proof within
``handshake_timeout`` closes it too.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import selectors
import socket
from typing import Any

import msgspec
import pykka

from actors.transport.link import Link, OnSent, Proving, Queued, configure_socket, enqueue
from actors.transport.table import LinkTable, link_end, tell_closed
from messages.address import Address
from messages.membership.effects import Inbound
from messages.settings import Settings
from messages.wire.framing import Codec, FrameDecoder, encode_frame
from messages.wire.handshake import (
    HANDSHAKE_FRAME_BYTES,
    NONCE_BYTES,
    Hello,
    HelloRefused,
    answer_challenge,
)

__all__ = ["Dialler", "cannot_connect", "is_ip_address", "resolve"]

logger = logging.getLogger(__name__)


class Dialler:
    """Connects of dialled links, and their deadlines; loop thread only."""

    def __init__(self, table: LinkTable, codec: Codec, settings: Settings) -> None:
        self._table = table
        self._codec = codec
        self._settings = settings

    def dial(
        self,
        link_id: int,
        address: Address,
        target: tuple[int, tuple[Any, ...]],
        first_frames: bytes,
        *,
        hello: Hello | None,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        idle_close: bool,
    ) -> None:
        """Connect to ``target`` (``address``, resolved); the link is in the table at once, its
        ``hello`` (if any) then its ``first_frames`` queued (held back, with a secret, until the
        handshake has ended)."""
        family, sockaddr = target
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as error:  # out of file descriptors, say
            tell_closed(manager, link_id, address, cannot_connect(address, error))
            return
        try:
            configure_socket(sock, self._settings)
            status = sock.connect_ex(sockaddr)
        except OSError as error:
            sock.close()
            tell_closed(manager, link_id, address, cannot_connect(address, error), link_end(error))
            return
        if status not in (0, errno.EINPROGRESS):
            sock.close()
            failure = OSError(status, os.strerror(status))
            reason = cannot_connect(address, failure)
            tell_closed(manager, link_id, address, reason, link_end(failure))
            return
        proving = None
        if hello is not None and self._settings.secret is not None:
            hello = msgspec.structs.replace(hello, nonce=os.urandom(NONCE_BYTES))
            proving = Proving(hello, [])
        link = Link(
            link_id,
            sock,
            str(address),
            peer=address,
            source=None,
            deliver_to=deliver_to,
            manager=manager,
            decoder=FrameDecoder(
                self._settings.max_frame_bytes, None if proving is None else HANDSHAKE_FRAME_BYTES
            ),
            check_hello=None,
            idle_close=idle_close,
        )
        link.connecting = status != 0
        if hello is not None:
            enqueue(link, encode_frame(self._codec.encode(hello)))
        link.proving = proving
        self._table.add(link, selectors.EVENT_READ | selectors.EVENT_WRITE)
        if first_frames:
            self.write(link, first_frames)
        if link.connecting:
            timeout = self._settings.connect_timeout
            link.timer = self._table.after(timeout, lambda: self._connect_overdue(link, timeout))
        else:
            self._await_proof(link)

    def write(self, link: Link, frame: bytes, data: bool = False, on_sent: OnSent = None) -> None:
        """Queue ``frame`` on ``link``, or hold it back while the (dialled) link is proving."""
        if link.proving is None:
            self._table.queue(link, frame, data, on_sent)
        else:
            link.proving.held.append(Queued(frame, on_sent, data, len(frame)))

    def challenged(self, link: Link, message: Any) -> bool:
        """Answer the accepting member's first frame on a proving link: with this side's proof,
        then the frames held back (True: the link is up), or by refusing the link (False)."""
        proving = link.proving
        assert proving is not None
        answer = answer_challenge(self._settings, proving.hello, message)
        if isinstance(answer, str):
            logger.error("Refusing link to %s: %s", link.name, answer)
            with contextlib.suppress(pykka.ActorDeadError):  # the node is stopping
                refused = Inbound(message=HelloRefused(reason=answer), link=link.id, peer=link.name)
                link.deliver_to.tell(refused)
            self._table.queue(link, encode_frame(self._codec.encode(HelloRefused(reason=answer))))
            self._table.start_closing(link, f"refused: {answer}")
            return False
        link.proving = None
        if link.timer is not None:
            link.timer.cancel()
        self._table.queue(link, encode_frame(self._codec.encode(answer)))
        for queued in proving.held:
            self._table.queue(link, bytes(queued.frame), queued.data, queued.on_sent)
        return True

    def connected(self, link: Link) -> None:
        """A connecting link became writable: it is up (its frames go out), or it failed."""
        status = link.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if status:
            failure = OSError(status, os.strerror(status))
            self._table.finish(link, cannot_connect(link.name, failure), link_end(failure))
            return
        link.connecting = False
        if link.timer is not None:
            link.timer.cancel()
        self._await_proof(link)
        self._table.flush(link)

    def _await_proof(self, link: Link) -> None:
        """A proving link has connected: the member's proof is due within
        ``handshake_timeout``."""
        if link.proving is None:
            return
        timeout = self._settings.handshake_timeout

        def overdue() -> None:
            if link.proving is not None and self._table.holds(link):
                reason = f"no proof of the shared secret from {link.name} within {timeout:g} s"
                logger.warning("Closing link: %s", reason)
                self._table.finish(link, reason)

        link.timer = self._table.after(timeout, overdue)

    def _connect_overdue(self, link: Link, timeout: float) -> None:
        if link.connecting and self._table.holds(link):
            reason = f"cannot connect to {link.name}: no answer within {timeout:g} s"
            self._table.finish(link, reason)


def cannot_connect(address: Address | str, error: OSError) -> str:
    """Why a dial to ``address`` failed, led by the error's symbolic name (``ECONNREFUSED``),
    which, unlike the C library's text after it, is the same on every system and locale."""
    name = errno.errorcode.get(error.errno or 0)
    detail = error.strerror or str(error)
    return (
        f"cannot connect to {address}: {name}: {detail}"
        if name
        else f"cannot connect to {address}: {detail}"
    )


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IP address (no resolver needed)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(address: Address) -> tuple[int, tuple[Any, ...]]:
    """The socket family and address to connect to (a name through the resolver: it may wait)."""
    if not is_ip_address(address.host):
        family, _, _, _, sockaddr = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM
        )[0]
        return family, sockaddr
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    return family, (address.host, address.port)
