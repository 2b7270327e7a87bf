"""LinkTable: the open links of one I/O thread, and how frames go out on them and links end.

The primitives the loop, its acceptor and its dialler share: register a link (``add``, bounded by
``max_links``), queue a frame on it (``queue``, bounded by ``max_outbound_bytes``), write out what
the socket takes (``flush``), and close it, at once (``finish``: ``LinkClosed`` is told once per
link) or once its last frames have gone out (``start_closing``). Loop thread only, but ``new_id``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka

from actors.transport.link import (
    Link,
    OnSent,
    consume,
    drop_outbound,
    enqueue,
    next_batch,
    notify_sent,
    report_dropped,
    requeue,
)
from actors.transport.timers import Timer, TimerQueue
from actors.transport.tls import Tls
from messages.address import Address
from messages.local.links import LinkClosed, LinkEnd
from messages.settings import Settings

__all__ = ["LinkTable", "link_end", "tell_closed"]

logger = logging.getLogger(__name__)


class LinkTable:
    """The links by number, least recently used first, and their outbound side."""

    def __init__(
        self,
        selector: selectors.BaseSelector,
        timers: TimerQueue,
        settings: Settings,
        on_event: Callable[[Link, int], None],
        tls: Tls | None = None,
    ) -> None:
        self._selector = selector
        self._tls = tls  # every link's layer, when the node uses TLS
        self._timers = timers
        self._settings = settings
        self._on_event = on_event  # the loop's handler of a link's selector events
        self._links: collections.OrderedDict[int, Link] = collections.OrderedDict()
        self._written: dict[int, Link] = {}  # links written to in this round of the loop
        self._ids = iter(range(1, 1 << 62))
        self._ids_lock = threading.Lock()

    def new_id(self) -> int:
        """A new link's number (from any thread)."""
        with self._ids_lock:
            return next(self._ids)

    def get(self, link_id: int) -> Link | None:
        return self._links.get(link_id)

    def holds(self, link: Link) -> bool:
        """Whether ``link`` is still open (not finished, nor replaced by a link of its number)."""
        return self._links.get(link.id) is link

    def __len__(self) -> int:
        return len(self._links)

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def add(self, link: Link, interest: int) -> None:
        """Register ``link`` with the selector; past ``max_links``, the least recently used
        link is closed."""
        self._links[link.id] = link
        if self._tls is not None:
            self._secure(link)
        link.interest = interest
        link.handler = functools.partial(self._on_event, link)  # (no Python frame of its own)
        self._selector.register(link.sock, interest, link.handler)
        limit = self._settings.max_links
        while len(self._links) > limit:
            oldest = next(iter(self._links.values()))
            reason = f"the link limit ({limit}) is reached: closing the least recently used link"
            logger.warning("Closing link to %s: %s", oldest.name, reason)
            self.finish(oldest, reason)

    def _secure(self, link: Link) -> None:
        """Put a TLS layer under the frames of ``link``. A dialled link must finish its TLS
        handshake within ``handshake_timeout`` (an accepted one, say its Hello)."""
        assert self._tls is not None
        self._tls.attach(link, lambda: self._written.__setitem__(link.id, link))
        if link.check_hello is None:
            timeout = self._settings.handshake_timeout

            def overdue() -> None:
                if self.holds(link) and link.tls is not None and not link.tls.established:
                    reason = f"no TLS handshake with {link.name} within {timeout:g} s"
                    logger.warning("Closing link: %s", reason)
                    self.finish(link, reason)

            self.after(timeout, overdue)

    def touch(self, link: Link) -> None:
        link.last_active = time.monotonic()
        self._links.move_to_end(link.id)

    def after(self, delay: float, action: Callable[[], None]) -> Timer:
        """Run ``action`` once in the loop thread after ``delay`` seconds, unless cancelled."""
        return self._timers.call_once(time.monotonic() + delay, action)

    # -- writing -------------------------------------------------------------------------------

    def queue(self, link: Link, frame: bytes, data: bool = False, on_sent: OnSent = None) -> None:
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
            self.finish(link, reason)
            return
        with link.lock:
            enqueue(link, frame, data, on_sent)
        self._written[link.id] = link  # sent at the end of this round, with the rest

    def take_written(self) -> list[Link]:
        """The open, connected links queued to in this round: frames written together go out
        together, in one ``flush`` per link."""
        if not self._written:  # most rounds: the actors' writes went out in their threads
            return []
        written, self._written = self._written, {}
        return [link for link in written.values() if self.holds(link) and not link.connecting]

    def flush(self, link: Link) -> None:
        """Send what the socket takes now, membership frames first (through the link's TLS
        layer, which takes a batch whole or not at all, and may hold ciphertext); watch for
        writability while anything is left. Under the link's lock: another thread may be
        writing to it (``write_now``), and finds it empty, or busy and watched."""
        tls = link.tls
        failed: OSError | None = None
        done: list[OnSent] = []  # called after the lock is let go (see ``consume``)
        with link.lock:
            while link.outbound_bytes or (tls is not None and tls.unsent):
                batch = next_batch(link)
                size = sum(len(queued.frame) for queued in batch)
                data = b"".join(queued.frame for queued in batch)
                try:
                    sent = link.sock.send(data) if tls is None else tls.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as error:
                    requeue(link, batch)
                    failed = error
                    break
                consume(link, batch, sent, done)
                if sent < size or not size:  # no size: TLS ciphertext only
                    break
            waiting = link.outbound_bytes if tls is None else tls.waiting(link.outbound_bytes)
            finished = failed is not None or (not waiting and link.closing is not None)
            if not finished:
                self.watch(link, selectors.EVENT_WRITE if waiting else 0)
        for on_sent in done:
            notify_sent(on_sent)
        if not finished:
            return
        if failed is not None:
            self.finish(link, f"write failed: {failed}", link_end(failed))
        elif link.closing is not None:
            self.finish(link, link.closing)

    def pause(self, link: Link, paused: float | None) -> None:
        """Stop reading ``link`` (``paused``: since when), or read it again (None)."""
        link.paused = paused
        self.watch(link, link.interest & selectors.EVENT_WRITE)

    def watch(self, link: Link, write: int) -> None:
        """Watch ``link`` for reading (unless it is closing or paused) and ``write``."""
        reading = not link.closing and link.paused is None
        interest = write | (selectors.EVENT_READ if reading else 0)
        if link.connecting:
            interest = selectors.EVENT_READ | selectors.EVENT_WRITE
        if interest != link.interest:
            link.interest = interest
            self._selector.modify(link.sock, interest, link.handler)

    # -- closing -------------------------------------------------------------------------------

    def start_closing(self, link: Link, reason: str) -> None:
        """Close once the queued frames have gone out, or after ``connect_timeout``."""
        with link.lock:
            if link.closing is not None:
                return
            idle = not link.outbound_bytes and (link.tls is None or not link.tls.unsent)
            link.closing = reason  # from here on, no other thread writes to it
            if not idle:
                self.watch(link, selectors.EVENT_WRITE)
        if idle:
            self.finish(link, reason)
            return
        self.after(self._settings.connect_timeout, lambda: self.finish(link, reason))

    def finish(self, link: Link, reason: str, end: LinkEnd = LinkEnd.LOCAL) -> None:
        """Close the socket now and tell the manager why, and which ``end`` it tells of (once)."""
        if not self.holds(link):
            return
        del self._links[link.id]
        if link.timer is not None:
            link.timer.cancel()
        if link.on_finish is not None:
            link.on_finish()
        with link.lock:  # no other thread writes to it from here on
            link.open = False
            dropped = drop_outbound(link)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(link.sock)
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
            link.sock.close()
        report_dropped(link, dropped, reason)
        logger.debug("Link %s to %s closed: %s", link.id, link.name, reason)
        tell_closed(link.manager, link.id, link.peer, reason, end)

    def close_idle(self) -> None:
        """Start closing the idle-closing links without traffic for ``idle_timeout``."""
        deadline = time.monotonic() - self._settings.idle_timeout
        for link in [link for link in self._links.values() if link.idle_close]:
            if link.last_active < deadline:
                self.start_closing(link, f"idle for {self._settings.idle_timeout:g} s")

    def close_all(self) -> None:
        """The loop ends: close every socket (no ``LinkClosed``: the owners stop too)."""
        for link in self._links.values():
            with link.lock:
                link.open = False
                with contextlib.suppress(OSError):
                    link.sock.close()
        self._links.clear()


def tell_closed(
    manager: pykka.ActorRef[Any],
    link_id: int,
    peer: Address | None,
    reason: str,
    end: LinkEnd = LinkEnd.LOCAL,
) -> None:
    """Tell ``manager`` that a link is gone, or never came up (unless it has stopped)."""
    with contextlib.suppress(pykka.ActorDeadError):
        manager.tell(LinkClosed(link=link_id, peer=peer, reason=reason, end=end))


def link_end(error: OSError) -> LinkEnd:
    """What a socket error tells of the peer: a refused connect, a reset or closed peer, or
    nothing (a timeout, no route: silence is no evidence)."""
    if error.errno == errno.ECONNREFUSED:
        return LinkEnd.REFUSED
    if error.errno in (errno.ECONNRESET, errno.EPIPE):
        return LinkEnd.PEER
    return LinkEnd.LOCAL
