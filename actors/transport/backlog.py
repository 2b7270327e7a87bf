"""Backlog: the application messages a node has read off its links and its actors not yet taken.

The receiving half of backpressure (docs/architecture.md#backpressure). The I/O thread counts each
envelope it reads (``read``); the router counts each one it has handed on (``taken``), the ordering
actor each one it drops (``dropped``); the difference is what waits in the ordering actor and the
router. An application actor that does not keep up holds the rest in its own inbox: the router
names it here (``crowded``) when its inbox has grown past the bound, and the I/O thread watches
its length until it has drained. Over the bound (``over``), the I/O thread stops reading the links
that bring envelopes, so TCP pushes back on their senders, whose flow gates fill; below the
low-water mark (``drained``), half of each bound, it reads them again. It also reads a paused
link once every ``read_pause_limit``, for the heartbeats queued behind its envelopes (and so that
the sender's kernel does not give the link up): an actor that stalls costs its node at most one
read per link per ``read_pause_limit``.

No lock on the hot path: each counter has one writer (CPython reads and writes an int whole), and
the crowded inboxes, touched only while one is crowded, take a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from messages.messaging.envelope import Envelope, Envelopes
from messages.settings import Settings

__all__ = ["Backlog", "envelope_bytes", "envelopes_in"]


def envelope_bytes(envelope: Envelope) -> int:
    """The payload bytes of ``envelope`` that the backlog counts (none for a failure's)."""
    payload = getattr(envelope.body, "payload", None)
    return 0 if payload is None else len(payload)


def envelopes_in(message: object) -> tuple[int, int] | None:
    """How many envelopes a wire message is, and their payload bytes; None for any other."""
    if isinstance(message, Envelope):
        return 1, envelope_bytes(message)
    if isinstance(message, Envelopes):
        return len(message.envelopes), sum(map(envelope_bytes, message.envelopes))
    return None


class Backlog:
    """Counts of envelopes read and taken, and the inboxes of actors that do not keep up."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._read = self._read_bytes = 0  # written by the I/O thread only
        self._taken = self._taken_bytes = 0  # by the router only
        self._dropped = self._dropped_bytes = 0  # by the ordering actor only
        self._crowded: dict[int, Callable[[], int]] = {}  # each inbox's ``qsize``
        self.pauses = 0  # links paused so far (by the I/O thread only)
        self.attached = False  # whether a router takes what is read (nothing is counted before)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> Backlog:
        return cls(settings.max_inbound_messages, settings.max_inbound_bytes)

    def attach(self) -> None:
        """A router takes the envelopes read from now on (an I/O loop without one, a benchmark's
        say, never pauses: nobody would ever take what it counts)."""
        self.attached = True

    def read(self, size: int, count: int = 1) -> None:
        """``count`` envelopes of ``size`` payload bytes in all were read off a link."""
        if self.attached:
            self._read += count
            self._read_bytes += size

    def taken(self, size: int) -> None:
        self._taken += 1
        self._taken_bytes += size

    def dropped(self, size: int) -> None:
        self._dropped += 1
        self._dropped_bytes += size

    @property
    def held(self) -> tuple[int, int]:
        """Envelopes (and their payload bytes) read and not yet handed to their actors."""
        return (
            self._read - self._taken - self._dropped,
            self._read_bytes - self._taken_bytes - self._dropped_bytes,
        )

    def handed(self, inbox: object) -> None:
        """The router has just told an actor with ``inbox`` a message: watch the inbox if it
        holds more than the bound (an inbox that cannot say its length is not watched)."""
        qsize: Callable[[], int] | None = getattr(inbox, "qsize", None)
        if qsize is not None and qsize() > self.max_messages:
            with self._lock:
                self._crowded[id(inbox)] = qsize

    def over(self) -> bool:
        """Whether the node holds more than the bound (in envelopes not yet handed on, their
        bytes, or one actor's inbox)."""
        messages, size = self.held
        if not self.attached:
            return False
        if messages > self.max_messages or size > self.max_bytes:
            return True
        if not self._crowded:
            return False
        with self._lock:
            inboxes = list(self._crowded.values())
        return any(qsize() > self.max_messages for qsize in inboxes)

    def drained(self) -> bool:
        """Whether the node holds less than half the bound (and no actor's inbox holds more):
        read again. Forgets the inboxes that have drained."""
        messages, size = self.held
        if messages > self.max_messages // 2 or size > self.max_bytes // 2:
            return False
        with self._lock:
            for key, qsize in list(self._crowded.items()):
                if qsize() <= self.max_messages // 2:
                    del self._crowded[key]
            return not self._crowded
