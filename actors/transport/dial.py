"""Dialler: the connecting side of the I/O thread, up to a dialled link's first write.

A connect is non-blocking, with its own deadline (``connect_timeout``), so a peer behind a
partition never holds up anything else; the link's first frames (its ``Hello``) are queued at once
and go out when the connect completes. A host name is resolved by ``resolve`` in the dialling
thread, never in the I/O thread. A dial that fails is told to its manager as ``LinkClosed``
(``LinkEnd.REFUSED`` when the peer's address refused it).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
from typing import Any

import pykka

from actors.transport.link import Link, configure_socket, enqueue
from actors.transport.table import LinkTable, link_end, tell_closed
from messages.address import Address
from messages.settings import Settings
from messages.wire.framing import FrameDecoder

__all__ = ["Dialler", "cannot_connect", "resolve"]


class Dialler:
    """Connects of dialled links, and their deadlines; loop thread only."""

    def __init__(self, table: LinkTable, settings: Settings) -> None:
        self._table = table
        self._settings = settings

    def dial(
        self,
        link_id: int,
        address: Address,
        target: tuple[int, tuple[Any, ...]],
        first_frames: bytes,
        *,
        deliver_to: pykka.ActorRef[Any],
        manager: pykka.ActorRef[Any],
        idle_close: bool,
    ) -> None:
        """Connect to ``target`` (``address``, resolved); the link is in the table at once, its
        ``first_frames`` queued."""
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
        link = Link(
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
        enqueue(link, first_frames)
        self._table.add(link, selectors.EVENT_READ | selectors.EVENT_WRITE)
        if link.connecting:
            timeout = self._settings.connect_timeout
            link.timer = self._table.after(timeout, lambda: self._connect_overdue(link, timeout))

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
        self._table.flush(link)

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


def resolve(address: Address) -> tuple[int, tuple[Any, ...]]:
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
