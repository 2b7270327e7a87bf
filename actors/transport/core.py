"""LoopCore: the links of the I/O thread, and how frames go out on them and links end.

The state every part of the ``IoLoop`` shares (selector, timers, links) and the primitives each of
them uses: register a link (``_add``, bounded by ``max_links``), queue a frame on it (``_queue``,
bounded by ``max_outbound_bytes``), write out what the socket takes (``_flush``), and close it,
at once (``_finish``: ``LinkClosed`` is told once per link) or once its last frames have gone out
(``_start_closing``). The accepting and the dialling side build on it (``actors.transport.accept``,
``actors.transport.dial``); the thread itself and its thread-safe API are ``actors.transport.loop``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.transport.link import (
    Link,
    OnSent,
    consume,
    drop_outbound,
    logger,
    next_batch,
    notify_sent,
    requeue,
)
from actors.transport.timers import Timer, TimerQueue
from messages.local.links import LinkClosed
from messages.settings import Settings
from messages.wire.framing import Codec

__all__ = ["LoopCore"]


class LoopCore:
    """The links of one I/O thread and their outbound side; loop thread only (but ``_next_id``)."""

    def __init__(self, codec: Codec, settings: Settings) -> None:
        self._codec = codec
        self._settings = settings
        self._selector = selectors.DefaultSelector()
        self._timers = TimerQueue()
        self._links: collections.OrderedDict[int, Link] = collections.OrderedDict()
        self._unflushed: dict[int, Link] = {}  # links written to in this round of the loop
        self._link_ids = iter(range(1, 1 << 62))
        self._ids_lock = threading.Lock()
        self._stopping = False

    def _next_id(self) -> int:
        """A new link's number (from any thread)."""
        with self._ids_lock:
            return next(self._link_ids)

    def _guarded(self, action: Callable[..., Any], *args: Any) -> None:
        """Run one handler; an error is a bug to log, never the end of the I/O thread."""
        try:
            action(*args)
        except Exception:
            logger.exception("I/O thread kept running after an error in %r", action)

    def _after(self, delay: float, action: Callable[[], None]) -> Timer:
        """A one-off timer of the loop itself (loop thread only)."""

        def run() -> bool:
            action()
            return False

        return self._timers.add(time.monotonic() + delay, Timer(run, None))

    # -- links -------------------------------------------------------------------------------

    def _add(self, link: Link, interest: int) -> None:
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

    def _on_event(self, link: Link, mask: int) -> None:
        """A link's selector callback (the ``IoLoop`` handles its events)."""
        raise NotImplementedError

    def _touch(self, link: Link) -> None:
        link.last_active = time.monotonic()
        self._links.move_to_end(link.id)

    # -- writing -------------------------------------------------------------------------------

    def _queue(self, link: Link, frame: bytes, data: bool = False, on_sent: OnSent = None) -> None:
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

    def _flush(self, link: Link) -> None:
        """Send what the socket takes now, membership frames first; watch for writability while
        anything is left."""
        while link.outbound_bytes:
            batch = next_batch(link)
            size = sum(len(queued.frame) for queued in batch)
            try:
                sent = link.sock.send(b"".join(queued.frame for queued in batch))
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:
                requeue(link, batch)
                self._finish(link, f"write failed: {error}")
                return
            consume(link, batch, sent)
            if sent < size:
                break
        if not link.outbound_bytes and link.closing is not None:
            self._finish(link, link.closing)
            return
        self._watch(link, selectors.EVENT_WRITE if link.outbound_bytes else 0)

    def _watch(self, link: Link, write: int) -> None:
        interest = write | (0 if link.closing else selectors.EVENT_READ)
        if link.connecting:
            interest = selectors.EVENT_READ | selectors.EVENT_WRITE
        if interest != link.interest:
            link.interest = interest
            self._selector.modify(link.sock, interest, link.handler)

    # -- closing -------------------------------------------------------------------------------

    def _start_closing(self, link: Link, reason: str) -> None:
        """Close once the queued frames have gone out, or after ``connect_timeout``."""
        if link.closing is not None:
            return
        if not link.outbound_bytes:
            self._finish(link, reason)
            return
        link.closing = reason
        self._watch(link, selectors.EVENT_WRITE)
        self._after(self._settings.connect_timeout, lambda: self._finish(link, reason))

    def _finish(self, link: Link, reason: str) -> None:
        """Close the socket now and tell the manager why (once)."""
        if self._links.get(link.id) is not link:
            return
        del self._links[link.id]
        if link.timer is not None:
            link.timer.cancel()
        self._release_handshake(link)
        drop_outbound(link, reason)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(link.sock)
        with contextlib.suppress(OSError):
            link.sock.shutdown(socket.SHUT_RDWR)
        link.sock.close()
        logger.debug("Link %s to %s closed: %s", link.id, link.name, reason)
        with contextlib.suppress(pykka.ActorDeadError):
            link.manager.tell(LinkClosed(link=link.id, peer=link.peer, reason=reason))

    def _release_handshake(self, link: Link) -> None:
        """Give back the handshake slot of an accepted link (the accepting side counts them)."""

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self._settings.idle_timeout
        for link in [link for link in self._links.values() if link.idle_close]:
            if link.last_active < deadline:
                self._start_closing(link, f"idle for {self._settings.idle_timeout:g} s")
